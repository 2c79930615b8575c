/* history.c: the recent-rates ring: fixed-size rows, one sample per HISTORY_STEP_S at most, every name ranked, for the landing page. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "log.h"

struct cand {
	uint64_t hash;
	double value;
	double rate;		/* NAN: unknown (first seen in this sample) */
	size_t name;		/* offset of its name in names */
	unsigned char kind;
};

struct prev {
	uint64_t hash;
	double value;
};

/*
 * The rows are fixed-size.  Ranking takes every name of a sample: the
 * candidates, their names and an open-addressing index live while the sample
 * is taken; only each name's total (16 bytes) is kept to the next one.
 */
static struct {
	time_t last, now;
	double mono, prev_mono;	/* CLOCK_MONOTONIC of this sample and the last: rates to the ms */
	int have_prev;
	struct cand *cur;
	size_t ncur, cap;
	char *names;
	size_t names_len, names_cap;
	uint32_t *slot;		/* 2 * cap of them: index into cur + 1; 0 empty */
	struct prev *prev;
	size_t nprev;
	struct history_row vm[HISTORY_VM_ROWS], cg[HISTORY_CG_ROWS], tmp[HISTORY_VM_ROWS];
	const struct history_row *vm_order[HISTORY_VM_ROWS], *cg_order[HISTORY_CG_ROWS];
	size_t nvm, ncg;
	size_t peak;		/* bytes the last sample held while it was taken */
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
	h.names_len = 0;
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

/* Room for one more candidate; the index is rebuilt at twice the candidates. */
static void cand_reserve(void)
{
	if (h.ncur < h.cap)
		return;
	h.cap = h.cap ? h.cap * 2 : 256;
	h.cur = xrealloc(h.cur, h.cap * sizeof(*h.cur));
	free(h.slot);
	h.slot = xcalloc(2 * h.cap, sizeof(*h.slot));
	for (size_t i = 0; i < h.ncur; i++) {
		size_t s = h.cur[i].hash & (2 * h.cap - 1);

		while (h.slot[s])
			s = (s + 1) & (2 * h.cap - 1);
		h.slot[s] = (uint32_t)(i + 1);
	}
}

void history_add(enum history_kind kind, const char *name, size_t len, uint64_t value)
{
	uint64_t hash = history_hash(kind, name, len);
	char text[HISTORY_NAME_MAX];
	struct cand *c;
	size_t i, n;

	if (h.cap) {
		for (i = hash & (2 * h.cap - 1); h.slot[i]; i = (i + 1) & (2 * h.cap - 1)) {
			c = &h.cur[h.slot[i] - 1];
			if (c->hash == hash) {
				c->value += (double)value;
				return;
			}
		}
	}
	cand_reserve();
	for (i = hash & (2 * h.cap - 1); h.slot[i]; i = (i + 1) & (2 * h.cap - 1))
		;
	history_unescape(text, sizeof(text), name, len);
	n = strlen(text) + 1;
	if (h.names_len + n > h.names_cap) {
		h.names_cap = (h.names_len + n) * 2;
		h.names = xrealloc(h.names, h.names_cap);
	}
	memcpy(h.names + h.names_len, text, n);
	c = &h.cur[h.ncur++];
	h.slot[i] = (uint32_t)h.ncur;
	c->hash = hash;
	c->kind = (unsigned char)kind;
	c->value = (double)value;
	c->name = h.names_len;
	h.names_len += n;
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
	return strcmp(h.names + x->name, h.names + y->name);
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
			snprintf(r->name, sizeof(r->name), "%s", h.names + c->name);
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
	struct cand **order = xmalloc((h.ncur ? h.ncur : 1) * sizeof(*order));
	double dt = h.mono - h.prev_mono;

	for (size_t i = 0; i < h.ncur; i++) {
		struct cand *c = &h.cur[i];
		struct prev key = { .hash = c->hash }, *p = NULL;

		if (h.have_prev && dt > 0 && h.nprev)
			p = bsearch(&key, h.prev, h.nprev, sizeof(*h.prev), prev_cmp);
		/* a counter never goes back; a series made again (a restarted VM) starts over */
		c->rate = !p ? NAN : c->value >= p->value ? (c->value - p->value) / dt : 0;
		order[i] = c;
	}
	qsort(order, h.ncur, sizeof(*order), cand_cmp);
	h.nvm = history_pick(HISTORY_VM, h.vm, h.nvm, HISTORY_VM_ROWS, order, h.ncur, h.vm_order);
	h.ncg = history_pick(HISTORY_CGROUP, h.cg, h.ncg, HISTORY_CG_ROWS, order, h.ncur, h.cg_order);
	h.peak = h.cap * (sizeof(*h.cur) + 2 * sizeof(*h.slot)) + h.names_cap + h.ncur * sizeof(*order);
	free(order);
	h.prev = xrealloc(h.prev, (h.ncur ? h.ncur : 1) * sizeof(*h.prev));
	for (size_t i = 0; i < h.ncur; i++) {
		h.prev[i].hash = h.cur[i].hash;
		h.prev[i].value = h.cur[i].value;
	}
	h.nprev = h.ncur;
	qsort(h.prev, h.nprev, sizeof(*h.prev), prev_cmp);
	h.prev_mono = h.mono;
	h.have_prev = 1;
	h.last = h.now;
	/* what ranked this sample is not kept to the next */
	free(h.cur);
	free(h.slot);
	free(h.names);
	h.cur = NULL;
	h.slot = NULL;
	h.names = NULL;
	h.ncur = h.cap = h.names_len = h.names_cap = 0;
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
	cJSON_AddNumberToObject(o, "memory_bytes", (double)(sizeof(h) + h.nprev * sizeof(*h.prev)));
	cJSON_AddNumberToObject(o, "sample_bytes", (double)h.peak);
	cJSON_AddItemToObject(o, "vms", rows_json(HISTORY_VM, now));
	cJSON_AddItemToObject(o, "cgroups", rows_json(HISTORY_CGROUP, now));
	return o;
}
