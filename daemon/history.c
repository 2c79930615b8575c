/* history.c: the recent-rates ring: fixed-size tables, one sample per HISTORY_STEP_S at most, for the landing page. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "log.h"

#define SLOTS (2 * HISTORY_CANDIDATES)	/* open addressing, at most half full */

struct cand {
	uint64_t hash;
	double value;
	double rate;		/* NAN: unknown (first seen in this sample) */
	unsigned char kind;
	char name[HISTORY_NAME_MAX];
};

struct prev {
	uint64_t hash;
	double value;
};

/* Every byte the history uses is here: nothing is allocated. */
static struct {
	time_t last, now;
	double mono, prev_mono;	/* CLOCK_MONOTONIC of this sample and the last: rates to the ms */
	int have_prev;
	struct cand cur[HISTORY_CANDIDATES];
	size_t ncur;
	short slot[SLOTS];	/* index into cur + 1; 0 empty */
	struct prev prev[HISTORY_CANDIDATES];
	size_t nprev;
	unsigned long long unranked;	/* names beyond HISTORY_CANDIDATES at a sample */
	struct history_row vm[HISTORY_VM_ROWS], cg[HISTORY_CG_ROWS], tmp[HISTORY_VM_ROWS];
	const struct history_row *vm_order[HISTORY_VM_ROWS], *cg_order[HISTORY_CG_ROWS];
	size_t nvm, ncg;
} h;

static uint64_t history_hash(enum history_kind kind, const char *name, size_t len)
{
	uint64_t x = 14695981039346656037ull ^ (uint64_t)kind;

	for (size_t i = 0; i < len; i++)
		x = (x ^ (unsigned char)name[i]) * 1099511628211ull;
	return x ? x : 1;
}

int history_due(time_t now)
{
	return !h.last || now - h.last >= HISTORY_STEP_S;
}

void history_begin(time_t now)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	h.mono = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	h.now = now;
	h.ncur = 0;
	memset(h.slot, 0, sizeof(h.slot));
}

/* A rendered label value back to its text: \\, \" and \n undone. */
static void history_unescape(char *out, size_t size, const char *in, size_t len)
{
	size_t j = 0;

	for (size_t i = 0; i < len && j + 1 < size; i++) {
		char c = in[i];

		if (c == '\\' && i + 1 < len) {
			c = in[++i];
			if (c == 'n')
				c = '\n';
		}
		out[j++] = c;
	}
	/* a cut name ends on a whole UTF-8 character */
	if (j + 1 == size) {
		size_t k = j;
		unsigned char lead;

		while (k && ((unsigned char)out[k - 1] & 0xc0) == 0x80)
			k--;
		lead = k ? (unsigned char)out[k - 1] : 0;
		if (lead >= 0xc0 && k - 1 + (lead >= 0xf0 ? 4u : lead >= 0xe0 ? 3u : 2u) > j)
			j = k - 1;
	}
	out[j] = '\0';
}

void history_add(enum history_kind kind, const char *name, size_t len, uint64_t value)
{
	uint64_t hash = history_hash(kind, name, len);
	size_t i = hash & (SLOTS - 1);
	struct cand *c;

	for (; h.slot[i]; i = (i + 1) & (SLOTS - 1)) {
		c = &h.cur[h.slot[i] - 1];
		if (c->hash == hash) {
			c->value += (double)value;
			return;
		}
	}
	if (h.ncur == HISTORY_CANDIDATES) {
		h.unranked++;
		return;
	}
	c = &h.cur[h.ncur++];
	h.slot[i] = (short)h.ncur;
	c->hash = hash;
	c->kind = (unsigned char)kind;
	c->value = (double)value;
	history_unescape(c->name, sizeof(c->name), name, len);
}

static int prev_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct prev *)a)->hash, y = ((const struct prev *)b)->hash;

	return x < y ? -1 : x > y;
}

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = *(const struct cand *const *)a, *y = *(const struct cand *const *)b;
	double rx = isnan(x->rate) ? -1 : x->rate, ry = isnan(y->rate) ? -1 : y->rate;

	if (rx != ry)
		return rx < ry ? 1 : -1;
	return strcmp(x->name, y->name);
}

static void row_push(struct history_row *r, time_t t, double rate)
{
	r->t[r->head] = t;
	r->rate[r->head] = (float)rate;
	r->head = (r->head + 1) % HISTORY_POINTS;
	if (r->n < HISTORY_POINTS)
		r->n++;
}

/* The rows of one kind become the chosen candidates, in order, each keeping its old ring. */
static size_t history_pick(enum history_kind kind, struct history_row *rows, size_t nold,
			   size_t max, struct cand **order, size_t norder, const struct history_row **out)
{
	size_t n = 0;

	for (size_t i = 0; i < norder && n < max; i++) {
		struct cand *c = order[i];
		struct history_row *r = &h.tmp[n];
		size_t j;

		if (c->kind != kind || (kind == HISTORY_CGROUP && isnan(c->rate)))
			continue;
		for (j = 0; j < nold && rows[j].hash != c->hash; j++)
			;
		/* an idle cgroup does not take a row; one that had a row keeps it while it fits */
		if (kind == HISTORY_CGROUP && c->rate == 0 && j == nold)
			continue;
		if (j < nold) {
			*r = rows[j];
		} else {
			memset(r, 0, sizeof(*r));
			r->hash = c->hash;
			snprintf(r->name, sizeof(r->name), "%s", c->name);
		}
		if (!isnan(c->rate))
			row_push(r, h.now, c->rate);
		n++;
	}
	memcpy(rows, h.tmp, n * sizeof(*rows));
	for (size_t i = 0; i < n; i++)
		out[i] = &rows[i];
	return n;
}

void history_end(void)
{
	static struct cand *order[HISTORY_CANDIDATES];
	double dt = h.mono - h.prev_mono;

	for (size_t i = 0; i < h.ncur; i++) {
		struct cand *c = &h.cur[i];
		struct prev key = { .hash = c->hash }, *p = NULL;

		if (h.have_prev && dt > 0)
			p = bsearch(&key, h.prev, h.nprev, sizeof(*h.prev), prev_cmp);
		/* a counter never goes back; a series made again (a restarted VM) starts over */
		c->rate = !p ? NAN : c->value >= p->value ? (c->value - p->value) / dt : 0;
		order[i] = c;
	}
	qsort(order, h.ncur, sizeof(*order), cand_cmp);
	h.nvm = history_pick(HISTORY_VM, h.vm, h.nvm, HISTORY_VM_ROWS, order, h.ncur, h.vm_order);
	h.ncg = history_pick(HISTORY_CGROUP, h.cg, h.ncg, HISTORY_CG_ROWS, order, h.ncur, h.cg_order);
	for (size_t i = 0; i < h.ncur; i++) {
		h.prev[i].hash = h.cur[i].hash;
		h.prev[i].value = h.cur[i].value;
	}
	h.nprev = h.ncur;
	qsort(h.prev, h.nprev, sizeof(*h.prev), prev_cmp);
	h.prev_mono = h.mono;
	h.have_prev = 1;
	h.last = h.now;
}

size_t history_rows(enum history_kind kind, const struct history_row *const **out)
{
	*out = kind == HISTORY_VM ? h.vm_order : h.cg_order;
	return kind == HISTORY_VM ? h.nvm : h.ncg;
}

void history_point(const struct history_row *r, unsigned int i, time_t *t, double *rate)
{
	unsigned int k = (r->head + HISTORY_POINTS - r->n + i) % HISTORY_POINTS;

	*t = r->t[k];
	*rate = r->rate[k];
}

static cJSON *rows_json(enum history_kind kind, time_t now)
{
	const struct history_row *const *rows;
	size_t n = history_rows(kind, &rows);
	cJSON *a = cJSON_CreateArray();

	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject(), *pts = cJSON_CreateArray();
		time_t t = 0;
		double rate = 0;

		cJSON_AddStringToObject(o, "name", rows[i]->name);
		for (unsigned int j = 0; j < rows[i]->n; j++) {
			cJSON *pt = cJSON_CreateArray();

			history_point(rows[i], j, &t, &rate);
			cJSON_AddItemToArray(pt, cJSON_CreateNumber((double)(now - t)));
			cJSON_AddItemToArray(pt, cJSON_CreateNumber(round(rate * 10) / 10));
			cJSON_AddItemToArray(pts, pt);
		}
		if (rows[i]->n)
			cJSON_AddNumberToObject(o, "rate", round(rate * 10) / 10);
		else
			cJSON_AddNullToObject(o, "rate");
		cJSON_AddItemToObject(o, "points", pts);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

cJSON *history_json(time_t now)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		die_oom();
	cJSON_AddNumberToObject(o, "step_seconds", HISTORY_STEP_S);
	cJSON_AddNumberToObject(o, "points", HISTORY_POINTS);
	cJSON_AddNumberToObject(o, "memory_bytes", (double)sizeof(h));
	cJSON_AddNumberToObject(o, "unranked", (double)h.unranked);
	cJSON_AddItemToObject(o, "vms", rows_json(HISTORY_VM, now));
	cJSON_AddItemToObject(o, "cgroups", rows_json(HISTORY_CGROUP, now));
	return o;
}
