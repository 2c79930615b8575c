/* top.c: `fpu_exporter top`: a kvm_stat-like client that reads a running daemon over HTTP and shows rates. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "expo.h"
#include "log.h"
#include "top.h"
#include "version.h"

#define TOP_NAME_MAX	256
#define TOP_MAX_BODY	(256u << 20)
#define BIT(n)		(1ull << (n))
#define AVX_BITS	BIT(2)
#define AVX512_BITS	(BIT(5) | BIT(6) | BIT(7))
#define AMX_BITS	(BIT(17) | BIT(18))

/* One row: a VM (key domain), a vCPU (key domain/vcpu) or a cgroup. */
struct top_row {
	char name[TOP_NAME_MAX];
	char sub[16];		/* vCPU label; "" for a VM or cgroup */
	char xcr0[19];
	double c[8];		/* counters, by enum top_counter */
	double r[8];		/* their rates */
	int seen;
};

enum top_counter { TC_RELOADS, TC_LOADS, TC_SAVES, TC_AVX, TC_AVX512, TC_AMX, TC_SIGRET, TC_FAIL };

/* Rows by name: an array, and an open-addressing index into it (a host may have thousands of cgroups). */
struct top_table {
	struct top_row *v;
	size_t n, cap;
	size_t *idx;		/* row + 1, 0 empty; nidx a power of two, at most half full */
	size_t nidx;
};

struct top_snap {
	struct top_table vms, vcpus, cgroups;
	int probes, attached;
	struct timespec at;
	time_t wall;		/* when it was read */
	double scrape_ms;
};

static struct {
	char host[256], port[16];
	char *auth;		/* base64 of user:password, or NULL */
	double interval;
	int once, json, color;
	int view;		/* 0 VMs, 1 cgroups */
	int sort;		/* column index of the view */
	int paused;
	char filter[64];
	int filtering;		/* reading the filter line */
	int sel;		/* selected VM row */
	char expanded[TOP_NAME_MAX];
	char version[64], kernel[128], hostname[256];
	struct termios saved;
	int raw;
} top = { .interval = 2.0 };

static volatile sig_atomic_t top_winch = 1, top_quit;

static void top_onsig(int sig)
{
	if (sig == SIGWINCH)
		top_winch = 1;
	else
		top_quit = 1;
}

/* ---- HTTP: one GET over a fresh connection ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *top_base64(const char *s)
{
	size_t n = strlen(s), j = 0;
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);

	for (size_t i = 0; i < n; i += 3) {
		unsigned int v = (unsigned char)s[i] << 16;

		v |= i + 1 < n ? (unsigned char)s[i + 1] << 8 : 0;
		v |= i + 2 < n ? (unsigned char)s[i + 2] : 0;
		out[j++] = b64[(v >> 18) & 63];
		out[j++] = b64[(v >> 12) & 63];
		out[j++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		out[j++] = i + 2 < n ? b64[v & 63] : '=';
	}
	out[j] = '\0';
	return out;
}

/* GET path into body; 0, or -errno / -EACCES (401) / -EPROTO with a one-line message in err. */
static int top_get(const char *path, struct buf *body, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct buf raw = { 0 };
	char req[1024], *hdr_end;
	int fd = -1, rc, status;

	rc = getaddrinfo(top.host, top.port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "cannot reach the daemon at %s:%s: %s", top.host, top.port,
			 gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	errno = ECONNREFUSED;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		rc = errno;
		close(fd);
		fd = -1;
		errno = rc;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		rc = errno;
		snprintf(err, errlen, "cannot reach the daemon at %s:%s: %s", top.host, top.port,
			 strerror(rc));
		return -rc;
	}
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s:%s\r\nUser-Agent: fpu_exporter-top/%s\r\n"
		 "%s%s%sConnection: close\r\n\r\n", path, top.host, top.port, FPU_EXPORTER_VERSION,
		 top.auth ? "Authorization: Basic " : "", top.auth ? top.auth : "", top.auth ? "\r\n" : "");
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		rc = errno;
		close(fd);
		snprintf(err, errlen, "daemon at %s:%s: %s", top.host, top.port, strerror(rc));
		return -rc;
	}
	for (;;) {
		ssize_t n;

		buf_reserve(&raw, 65536);
		n = read(fd, raw.data + raw.len, raw.cap - raw.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		raw.len += (size_t)n;
		if (raw.len > TOP_MAX_BODY)
			break;
	}
	close(fd);
	buf_append(&raw, "", 1);
	hdr_end = strstr(raw.data, "\r\n\r\n");
	if (!hdr_end || sscanf(raw.data, "HTTP/%*s %d", &status) != 1) {
		snprintf(err, errlen, "daemon at %s:%s: not an HTTP answer (is it TLS? top speaks plain HTTP)",
			 top.host, top.port);
		buf_free(&raw);
		return -EPROTO;
	}
	if (status == 401) {
		snprintf(err, errlen, "daemon at %s:%s: wrong credentials (HTTP 401; see --basic-auth-file)",
			 top.host, top.port);
		buf_free(&raw);
		return -EACCES;
	}
	if (status != 200) {
		snprintf(err, errlen, "daemon at %s:%s: %s answered HTTP %d", top.host, top.port, path, status);
		buf_free(&raw);
		return -EPROTO;
	}
	buf_reset(body);
	buf_append(body, hdr_end + 4, raw.len - 1 - (size_t)(hdr_end + 4 - raw.data));
	buf_append(body, "", 1);
	body->len--;
	buf_free(&raw);
	return 0;
}

/* ---- the text format, just the families top shows ---- */

/* Value of label name in a rendered label set into out (unescaped); 0, or -ENOENT. */
static int top_label(const char *labels, const char *name, char *out, size_t size)
{
	size_t nl = strlen(name), j = 0;
	const char *p = labels;

	while ((p = strstr(p, name))) {
		if ((p == labels || p[-1] == '{' || p[-1] == ',') && !strncmp(p + nl, "=\"", 2))
			break;
		p += nl;
	}
	if (!p)
		return -ENOENT;
	for (p += nl + 2; *p && *p != '"'; p++) {
		char ch = *p;

		if (ch == '\\' && p[1]) {
			p++;
			ch = *p == 'n' ? '\n' : *p;
		}
		if (j + 1 < size)
			out[j++] = ch;
	}
	out[j] = '\0';
	return 0;
}

static size_t top_hash(const char *name, const char *sub)
{
	size_t h = 14695981039346656037ull;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ull;
	h = (h ^ '/') * 1099511628211ull;
	for (; *sub; sub++)
		h = (h ^ (unsigned char)*sub) * 1099511628211ull;
	return h;
}

/* The slot of name/sub in the index: its row's, or the empty one where it would go. */
static size_t *top_slot(const struct top_table *t, const char *name, const char *sub)
{
	size_t i = top_hash(name, sub) & (t->nidx - 1);

	for (; t->idx[i]; i = (i + 1) & (t->nidx - 1)) {
		const struct top_row *r = &t->v[t->idx[i] - 1];

		if (!strcmp(r->name, name) && !strcmp(r->sub, sub))
			break;
	}
	return &t->idx[i];
}

/* After the rows moved (a sort). */
static void top_reindex(struct top_table *t)
{
	if (!t->nidx)
		return;
	memset(t->idx, 0, t->nidx * sizeof(*t->idx));
	for (size_t i = 0; i < t->n; i++)
		*top_slot(t, t->v[i].name, t->v[i].sub) = i + 1;
}

static const struct top_row *top_lookup(const struct top_table *t, const char *name, const char *sub)
{
	size_t *slot = t->nidx ? top_slot(t, name, sub) : NULL;

	return slot && *slot ? &t->v[*slot - 1] : NULL;
}

static struct top_row *top_find(struct top_table *t, const char *name, const char *sub)
{
	size_t *slot;

	if (2 * (t->n + 1) > t->nidx) {
		free(t->idx);
		t->nidx = t->nidx ? 2 * t->nidx : 256;
		t->idx = xcalloc(t->nidx, sizeof(*t->idx));
		top_reindex(t);
	}
	slot = top_slot(t, name, sub);
	if (*slot)
		return &t->v[*slot - 1];
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
	}
	memset(&t->v[t->n], 0, sizeof(t->v[0]));
	snprintf(t->v[t->n].name, sizeof(t->v[0].name), "%s", name);
	snprintf(t->v[t->n].sub, sizeof(t->v[0].sub), "%s", sub);
	*slot = ++t->n;
	return &t->v[t->n - 1];
}

static void top_add_shares(struct top_row *r, const char *xf, double v)
{
	unsigned long long bv = strtoull(xf, NULL, 16);

	r->c[TC_SAVES] += v;
	if (bv & AVX_BITS)
		r->c[TC_AVX] += v;
	if (bv & AVX512_BITS)
		r->c[TC_AVX512] += v;
	if (bv & AMX_BITS)
		r->c[TC_AMX] += v;
}

static void top_parse_line(struct top_snap *s, char *line)
{
	char name[128], dom[TOP_NAME_MAX], sub[TOP_NAME_MAX], *labels, *val;
	size_t nl = strcspn(line, "{ ");
	double v;

	if (line[0] == '#' || nl == 0 || nl >= sizeof(name))
		return;
	memcpy(name, line, nl);
	name[nl] = '\0';
	labels = line + nl;
	val = strrchr(line, ' ');
	if (!val)
		return;
	v = strtod(val + 1, NULL);
	if (!strcmp(name, "fpu_exporter_probe_attached")) {
		s->probes++;
		s->attached += v > 0;
	} else if (!strncmp(name, "fpu_guest_", 10)) {
		if (top_label(labels, "domain", dom, sizeof(dom)))
			return;
		if (!strcmp(name, "fpu_guest_xstate_saves_total")) {
			if (!top_label(labels, "xfeatures", sub, sizeof(sub)))
				top_add_shares(top_find(&s->vms, dom, ""), sub, v);
			return;
		}
		if (top_label(labels, "vcpu", sub, sizeof(sub)))
			return;
		if (!strcmp(name, "fpu_guest_reloads_total") || !strcmp(name, "fpu_guest_loads_total")) {
			int c = name[10] == 'r' ? TC_RELOADS : TC_LOADS;

			top_find(&s->vms, dom, "")->c[c] += v;
			top_find(&s->vcpus, dom, sub)->c[c] += v;
		} else if (!strcmp(name, "fpu_guest_xcr0_info")) {
			char x[19];

			if (!top_label(labels, "xcr0", x, sizeof(x))) {
				struct top_row *vm = top_find(&s->vms, dom, "");

				snprintf(top_find(&s->vcpus, dom, sub)->xcr0, sizeof(x), "%s", x);
				/* the VM's XCR0 when its vCPUs agree, else "mixed" */
				if (!vm->xcr0[0])
					snprintf(vm->xcr0, sizeof(x), "%s", x);
				else if (strcmp(vm->xcr0, x))
					snprintf(vm->xcr0, sizeof(x), "mixed");
			}
		}
	} else if (!strncmp(name, "fpu_", 4) && !top_label(labels, "cgroup", dom, sizeof(dom))) {
		if (!strcmp(name, "fpu_xstate_saves_total")) {
			if (!top_label(labels, "xfeatures", sub, sizeof(sub))) {
				struct top_row *r = top_find(&s->cgroups, dom, "");

				top_add_shares(r, sub, v);
				r->c[TC_SAVES] -= v;	/* saves come from fpu_regs_deactivated_total */
			}
		} else if (!strcmp(name, "fpu_regs_deactivated_total"))
			top_find(&s->cgroups, dom, "")->c[TC_SAVES] += v;
		else if (!strcmp(name, "fpu_sigreturn_restores_total"))
			top_find(&s->cgroups, dom, "")->c[TC_SIGRET] += v;
		else if (!strcmp(name, "fpu_sigreturn_failures_total"))
			top_find(&s->cgroups, dom, "")->c[TC_FAIL] += v;
	}
}

static void top_snap_free(struct top_snap *s)
{
	free(s->vms.v);
	free(s->vcpus.v);
	free(s->cgroups.v);
	free(s->vms.idx);
	free(s->vcpus.idx);
	free(s->cgroups.idx);
	memset(s, 0, sizeof(*s));
}

/* One reading of /metrics; 0 or -errno with err set. */
static int top_read(struct top_snap *s, char *err, size_t errlen)
{
	struct buf body = { 0 };
	struct timespec t0;
	char *line, *save;
	int rc;

	memset(s, 0, sizeof(*s));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = top_get("/metrics", &body, err, errlen);
	clock_gettime(CLOCK_MONOTONIC, &s->at);
	s->wall = time(NULL);
	if (rc < 0) {
		buf_free(&body);
		return rc;
	}
	s->scrape_ms = (double)(s->at.tv_sec - t0.tv_sec) * 1e3 + (double)(s->at.tv_nsec - t0.tv_nsec) / 1e6;
	for (line = strtok_r(body.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		top_parse_line(s, line);
	buf_free(&body);
	return 0;
}

/* /status: version (must be ours), kernel, host. */
static int top_status(char *err, size_t errlen)
{
	struct buf body = { 0 };
	cJSON *doc, *it;
	int rc = top_get("/status", &body, err, errlen);

	if (rc < 0) {
		buf_free(&body);
		return rc;
	}
	doc = cJSON_Parse(body.data);
	buf_free(&body);
	it = doc ? cJSON_GetObjectItem(doc, "version") : NULL;
	if (!cJSON_IsString(it)) {
		snprintf(err, errlen, "daemon at %s:%s: /status is not an fpu_exporter's", top.host, top.port);
		cJSON_Delete(doc);
		return -EPROTO;
	}
	snprintf(top.version, sizeof(top.version), "%s", it->valuestring);
	it = cJSON_GetObjectItem(doc, "kernel");
	snprintf(top.kernel, sizeof(top.kernel), "%s", cJSON_IsString(it) ? it->valuestring : "?");
	it = cJSON_GetObjectItem(doc, "hostname");
	snprintf(top.hostname, sizeof(top.hostname), "%s", cJSON_IsString(it) ? it->valuestring : top.host);
	cJSON_Delete(doc);
	if (strcmp(top.version, FPU_EXPORTER_VERSION)) {
		snprintf(err, errlen, "daemon at %s:%s is version %s, this top is %s", top.host, top.port,
			 top.version, FPU_EXPORTER_VERSION);
		return -EPROTO;
	}
	return 0;
}

/* Rates of cur against prev over the time between the two readings. */
static void top_rates(struct top_snap *cur, const struct top_snap *prev)
{
	double dt = (double)(cur->at.tv_sec - prev->at.tv_sec) +
		    (double)(cur->at.tv_nsec - prev->at.tv_nsec) / 1e9;
	struct top_table *ct[] = { &cur->vms, &cur->vcpus, &cur->cgroups };
	const struct top_table *pt[] = { &prev->vms, &prev->vcpus, &prev->cgroups };

	if (dt <= 0)
		return;
	for (int t = 0; t < 3; t++) {
		for (size_t i = 0; i < ct[t]->n; i++) {
			struct top_row *r = &ct[t]->v[i];
			const struct top_row *p = top_lookup(pt[t], r->name, r->sub);

			for (int c = 0; c < 8; c++) {
				double d = r->c[c] - (p ? p->c[c] : 0);

				r->r[c] = p && d > 0 ? d / dt : 0;
			}
		}
	}
}

/* ---- views ---- */

/* Sort keys of each view: the rate column they sort by. */
static const int top_vm_sorts[] = { TC_RELOADS, TC_LOADS, TC_SAVES };
static const char *const top_vm_sort_names[] = { "reloads/s", "loads/s", "saves/s" };
static const int top_cg_sorts[] = { TC_SAVES, TC_SIGRET, TC_FAIL };
static const char *const top_cg_sort_names[] = { "saves/s", "sigret/s", "fail/s" };
static int top_sort_col;

static int top_cmp(const void *a, const void *b)
{
	const struct top_row *x = a, *y = b;
	double d = y->r[top_sort_col] - x->r[top_sort_col];

	if (d != 0)
		return d > 0 ? 1 : -1;
	d = y->c[top_sort_col] - x->c[top_sort_col];
	if (d != 0)
		return d > 0 ? 1 : -1;
	return strcmp(x->name, y->name);
}

static int top_vcpu_cmp(const void *a, const void *b)
{
	const struct top_row *x = a, *y = b;
	int d = strcmp(x->name, y->name);

	return d ? d : atoi(x->sub) - atoi(y->sub);
}

static void top_sort(struct top_snap *s)
{
	top_sort_col = top.view == 0 ? top_vm_sorts[top.sort % 3] : top_cg_sorts[top.sort % 3];
	/* an empty table has no array: qsort() is not to be given NULL */
	if (s->vms.n)
		qsort(s->vms.v, s->vms.n, sizeof(*s->vms.v), top_cmp);
	if (s->cgroups.n)
		qsort(s->cgroups.v, s->cgroups.n, sizeof(*s->cgroups.v), top_cmp);
	if (s->vcpus.n)
		qsort(s->vcpus.v, s->vcpus.n, sizeof(*s->vcpus.v), top_vcpu_cmp);
	top_reindex(&s->vms);
	top_reindex(&s->cgroups);
	top_reindex(&s->vcpus);
}

static int top_match(const char *name)
{
	return !top.filter[0] || strcasestr(name, top.filter);
}

static double top_pct(double part, double all)
{
	return all > 0 ? 100.0 * part / all : 0;
}

/* Share (0-100) of the saves with counter c's state: over the interval, else of all saves so far. */
static double top_share(const struct top_row *r, int c)
{
	const double *v = r->r[TC_SAVES] > 0 ? r->r : r->c;

	return top_pct(v[c], v[TC_SAVES]);
}

static void top_shares(struct buf *b, const struct top_row *r)
{
	buf_printf(b, " %5.1f%% %5.1f%% %5.1f%%", top_share(r, TC_AVX), top_share(r, TC_AVX512),
		   top_share(r, TC_AMX));
}

/*
 * Ends the line in b from start, cut to cols (bytes; names are shown as they
 * come), without trailing blanks, then tail (an attribute reset).
 */
static void top_cut(struct buf *b, size_t start, int cols, const char *tail)
{
	if (cols > 0 && b->len - start > (size_t)cols)
		b->len = start + (size_t)cols;
	while (b->len > start && b->data[b->len - 1] == ' ')
		b->len--;
	buf_printf(b, "%s\n", tail);
}

/* The table of the view into b, at most rows lines (0: all). */
static void top_table(struct buf *b, struct top_snap *s, int view, int rows, int cols, int interactive)
{
	const char *on = top.color ? "\033[1;36m" : "", *off = top.color ? "\033[0m" : "";
	int used = 0, idx = 0;
	size_t start;

	if (view == 0) {
		buf_printf(b, "%s", on);
		start = b->len;
		buf_printf(b, "%-32s %10s %10s %10s %6s %6s %6s %-10s", "VM", "RELOADS/s", "LOADS/s",
			   "SAVES/s", "AVX", "AVX512", "AMX", "XCR0");
		top_cut(b, start, cols, off);
		used++;
		for (size_t i = 0; i < s->vms.n && (!rows || used < rows); i++) {
			const struct top_row *r = &s->vms.v[i];
			int sel = interactive && idx == top.sel, exp;

			if (!top_match(r->name))
				continue;
			exp = !strcmp(top.expanded, r->name);
			buf_printf(b, "%s", sel ? "\033[7m" : "");
			start = b->len;
			buf_printf(b, "%c %-30.30s %10.1f %10.1f %10.1f", interactive ? (exp ? '-' : '+') : ' ',
				   r->name, r->r[TC_RELOADS], r->r[TC_LOADS], r->r[TC_SAVES]);
			top_shares(b, r);
			buf_printf(b, " %-10s", r->xcr0[0] ? r->xcr0 : "-");
			top_cut(b, start, cols, sel ? "\033[0m" : "");
			used++;
			idx++;
			if (!exp && interactive)
				continue;
			for (size_t j = 0; j < s->vcpus.n && (!rows || used < rows); j++) {
				const struct top_row *v = &s->vcpus.v[j];

				if (strcmp(v->name, r->name))
					continue;
				start = b->len;
				buf_printf(b, "    vcpu %-23s %10.1f %10.1f %10s %6s %6s %6s %-10s", v->sub,
					   v->r[TC_RELOADS], v->r[TC_LOADS], "", "", "", "",
					   v->xcr0[0] ? v->xcr0 : "-");
				top_cut(b, start, cols, "");
				used++;
			}
		}
		if (idx == 0)
			buf_printf(b, "  (no running VMs%s)\n", top.filter[0] ? " match the filter" : "");
		return;
	}
	buf_printf(b, "%s", on);
	start = b->len;
	buf_printf(b, "%-40s %10s %6s %6s %6s %10s %8s", "CGROUP", "SAVES/s", "AVX", "AVX512",
		   "AMX", "SIGRET/s", "FAIL/s");
	top_cut(b, start, cols, off);
	used++;
	for (size_t i = 0; i < s->cgroups.n && (!rows || used < rows); i++) {
		const struct top_row *r = &s->cgroups.v[i];

		if (!top_match(r->name))
			continue;
		start = b->len;
		buf_printf(b, "%-40.40s %10.1f", r->name, r->r[TC_SAVES]);
		top_shares(b, r);
		buf_printf(b, " %10.1f %8.1f", r->r[TC_SIGRET], r->r[TC_FAIL]);
		top_cut(b, start, cols, "");
		used++;
		idx++;
	}
	if (idx == 0)
		buf_printf(b, "  (no cgroups%s)\n", top.filter[0] ? " match the filter" : "");
}

static void top_header(struct buf *b, const struct top_snap *s, int cols)
{
	char when[32];
	size_t start = b->len;

	strftime(when, sizeof(when), "%H:%M:%S", localtime(&s->wall));
	buf_printf(b, "%s%s%s  kernel %s  probes %d/%d attached  scrape %.0f ms at %s  every %gs%s",
		   top.color ? "\033[1m" : "", top.hostname, top.color ? "\033[0m" : "", top.kernel,
		   s->attached, s->probes, s->scrape_ms, when, top.interval, top.paused ? "  PAUSED" : "");
	top_cut(b, start, cols ? cols + (top.color ? 8 : 0) : 0, top.color ? "\033[0m" : "");
}

static void top_json(const struct top_snap *s)
{
	cJSON *doc = cJSON_CreateObject(), *vms = cJSON_CreateArray(), *cgs = cJSON_CreateArray();
	char *text;

	cJSON_AddStringToObject(doc, "host", top.hostname);
	cJSON_AddStringToObject(doc, "kernel", top.kernel);
	cJSON_AddStringToObject(doc, "version", top.version);
	cJSON_AddNumberToObject(doc, "probes", s->probes);
	cJSON_AddNumberToObject(doc, "probes_attached", s->attached);
	cJSON_AddNumberToObject(doc, "interval_seconds", top.interval);
	for (size_t i = 0; i < s->vms.n; i++) {
		const struct top_row *r = &s->vms.v[i];
		cJSON *o = cJSON_CreateObject(), *vc = cJSON_CreateArray();

		if (!top_match(r->name))
			continue;
		cJSON_AddStringToObject(o, "domain", r->name);
		cJSON_AddNumberToObject(o, "reloads_per_second", r->r[TC_RELOADS]);
		cJSON_AddNumberToObject(o, "loads_per_second", r->r[TC_LOADS]);
		cJSON_AddNumberToObject(o, "saves_per_second", r->r[TC_SAVES]);
		cJSON_AddNumberToObject(o, "avx_share", top_share(r, TC_AVX) / 100);
		cJSON_AddNumberToObject(o, "avx512_share", top_share(r, TC_AVX512) / 100);
		cJSON_AddNumberToObject(o, "amx_share", top_share(r, TC_AMX) / 100);
		cJSON_AddStringToObject(o, "xcr0", r->xcr0);
		for (size_t j = 0; j < s->vcpus.n; j++) {
			const struct top_row *v = &s->vcpus.v[j];
			cJSON *vo;

			if (strcmp(v->name, r->name))
				continue;
			vo = cJSON_CreateObject();
			cJSON_AddStringToObject(vo, "vcpu", v->sub);
			cJSON_AddNumberToObject(vo, "reloads_per_second", v->r[TC_RELOADS]);
			cJSON_AddNumberToObject(vo, "loads_per_second", v->r[TC_LOADS]);
			cJSON_AddStringToObject(vo, "xcr0", v->xcr0);
			cJSON_AddItemToArray(vc, vo);
		}
		cJSON_AddItemToObject(o, "vcpus", vc);
		cJSON_AddItemToArray(vms, o);
	}
	for (size_t i = 0; i < s->cgroups.n; i++) {
		const struct top_row *r = &s->cgroups.v[i];
		cJSON *o;

		if (!top_match(r->name))
			continue;
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "cgroup", r->name);
		cJSON_AddNumberToObject(o, "saves_per_second", r->r[TC_SAVES]);
		cJSON_AddNumberToObject(o, "avx_share", top_share(r, TC_AVX) / 100);
		cJSON_AddNumberToObject(o, "avx512_share", top_share(r, TC_AVX512) / 100);
		cJSON_AddNumberToObject(o, "amx_share", top_share(r, TC_AMX) / 100);
		cJSON_AddNumberToObject(o, "sigreturn_restores_per_second", r->r[TC_SIGRET]);
		cJSON_AddNumberToObject(o, "sigreturn_failures_per_second", r->r[TC_FAIL]);
		cJSON_AddItemToArray(cgs, o);
	}
	cJSON_AddItemToObject(doc, "vms", vms);
	cJSON_AddItemToObject(doc, "cgroups", cgs);
	text = cJSON_Print(doc);
	cJSON_Delete(doc);
	if (!text)
		die_oom();
	puts(text);
	free(text);
}

/* ---- the terminal ---- */

static void top_term_restore(void)
{
	if (!top.raw)
		return;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &top.saved);
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	top.raw = 0;
}

static int top_term_raw(void)
{
	struct termios t;

	if (tcgetattr(STDIN_FILENO, &top.saved) < 0)
		return -errno;
	t = top.saved;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) < 0)
		return -errno;
	top.raw = 1;
	fputs("\033[?1049h\033[?25l", stdout);	/* alternate screen, no cursor */
	return 0;
}

static int top_has_colors(void)
{
	const char *t = getenv("TERM");

	if (getenv("NO_COLOR") || !isatty(STDOUT_FILENO) || !t)
		return 0;
	return strstr(t, "color") || strstr(t, "xterm") || strstr(t, "screen") || strstr(t, "tmux") ||
	       strstr(t, "linux") || strstr(t, "rxvt");
}

static void top_draw(struct top_snap *s)
{
	struct winsize ws = { 0 };
	struct buf b = { 0 };
	int rows, cols;
	size_t start;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0 || !ws.ws_row)
		ws.ws_row = 24, ws.ws_col = 80;
	rows = ws.ws_row;
	cols = ws.ws_col;
	top_sort(s);
	buf_printf(&b, "\033[H\033[2J");
	top_header(&b, s, cols);
	start = b.len;
	if (top.filtering)
		buf_printf(&b, "filter: %s_", top.filter);
	else
		buf_printf(&b, "%s view, sorted by %s%s%s%s   q quit  v view  s/S sort  / filter  p pause%s",
			   top.view ? "cgroup" : "VM",
			   top.view ? top_cg_sort_names[top.sort % 3] : top_vm_sort_names[top.sort % 3],
			   top.filter[0] ? ", filter \"" : "", top.filter, top.filter[0] ? "\"" : "",
			   top.view ? "" : "  up/down, enter: vCPUs");
	top_cut(&b, start, cols, "");
	top_table(&b, s, top.view, rows - 3, cols, 1);
	if (b.len && b.data[b.len - 1] == '\n')
		b.len--;	/* the last line must not scroll the screen */
	fwrite(b.data, 1, b.len, stdout);
	fflush(stdout);
	buf_free(&b);
}

static int top_visible_vms(const struct top_snap *s)
{
	int n = 0;

	for (size_t i = 0; i < s->vms.n; i++)
		n += top_match(s->vms.v[i].name) != 0;
	return n;
}

static const char *top_selected(const struct top_snap *s)
{
	int n = 0;

	for (size_t i = 0; i < s->vms.n; i++)
		if (top_match(s->vms.v[i].name) && n++ == top.sel)
			return s->vms.v[i].name;
	return NULL;
}

/* A key; 1 to quit. */
static int top_key(struct top_snap *s, const char *k, ssize_t n)
{
	if (top.filtering) {
		size_t l = strlen(top.filter);

		if (k[0] == '\r' || k[0] == '\n' || k[0] == 27)
			top.filtering = 0;
		else if ((k[0] == 127 || k[0] == 8) && l)
			top.filter[l - 1] = '\0';
		else if (isprint((unsigned char)k[0]) && l + 1 < sizeof(top.filter))
			top.filter[l] = k[0], top.filter[l + 1] = '\0';
		top.sel = 0;
		return 0;
	}
	if (n >= 3 && k[0] == 27 && k[1] == '[') {
		if (k[2] == 'A' && top.sel > 0)
			top.sel--;
		else if (k[2] == 'B' && top.sel + 1 < top_visible_vms(s))
			top.sel++;
		return 0;
	}
	switch (k[0]) {
	case 'q': return 1;
	case 's': top.sort = (top.sort + 1) % 3; break;
	case 'S': top.sort = (top.sort + 2) % 3; break;
	case 'v': top.view = !top.view; top.sort = 0; break;
	case 'p': top.paused = !top.paused; break;
	case '/': top.filtering = 1; top.filter[0] = '\0'; top.sel = 0; break;
	case 'k': if (top.sel > 0) top.sel--; break;
	case 'j': if (top.sel + 1 < top_visible_vms(s)) top.sel++; break;
	case '\r': case '\n': case 'e': {
		const char *name = top_selected(s);

		if (name && strcmp(top.expanded, name))
			snprintf(top.expanded, sizeof(top.expanded), "%s", name);
		else
			top.expanded[0] = '\0';
		break;
	}
	}
	return 0;
}

static double top_elapsed(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) + (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

static int top_interactive(struct top_snap *prev, struct top_snap *cur)
{
	char err[512];
	int rc = 0;

	if (top_term_raw() < 0) {
		fprintf(stderr, "fpu_exporter top: standard input is not a terminal (use --once or --json)\n");
		return 1;
	}
	top_draw(cur);
	while (!top_quit) {
		double left = top.interval - top_elapsed(&cur->at);
		struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
		int r = poll(&p, 1, left > 0 ? (int)(left * 1000) + 1 : 0);

		if (r > 0) {
			char k[16];
			ssize_t n = read(STDIN_FILENO, k, sizeof(k));

			/* keys typed fast arrive together: one at a time, arrows as one */
			for (ssize_t i = 0; i < n; i++) {
				ssize_t len = n - i >= 3 && k[i] == 27 && k[i + 1] == '[' ? 3 : 1;

				if (top_key(cur, k + i, len))
					goto quit;
				i += len - 1;
			}
			top_draw(cur);
			continue;
		}
		if (top_winch) {
			top_winch = 0;
			top_draw(cur);
		}
		if (r < 0 || top_elapsed(&cur->at) < top.interval)
			continue;
		if (top.paused) {
			clock_gettime(CLOCK_MONOTONIC, &cur->at);	/* wait another interval */
			continue;
		}
		top_snap_free(prev);
		*prev = *cur;
		if (top_read(cur, err, sizeof(err)) < 0) {
			top_term_restore();
			fprintf(stderr, "fpu_exporter top: %s\n", err);
			*cur = *prev;
			memset(prev, 0, sizeof(*prev));
			return 1;
		}
		top_rates(cur, prev);
		top_draw(cur);
	}
quit:
	top_term_restore();
	return rc;
}

static void top_usage(FILE *f)
{
	fputs("usage: fpu_exporter top [flags]\n"
	      "  --web.listen-address=ADDR   the daemon to read (default \"localhost:9659\")\n"
	      "  --basic-auth-file=PATH      a file holding \"user:password\" for basic auth\n"
	      "  -d SECONDS                  refresh interval (default 2)\n"
	      "  --once                      print the VM and cgroup tables once and exit (rates over\n"
	      "                              one interval)\n"
	      "  --json                      like --once, as JSON\n"
	      "  --view=vm|cgroup            the view to start in (default vm)\n"
	      "  --filter=TEXT               only rows whose name contains TEXT\n"
	      "keys: q quit, v switch view, s/S sort, / filter, p pause, up/down and enter: a VM's vCPUs\n", f);
}

static int top_auth_file(const char *path)
{
	char line[512];
	FILE *f = fopen(path, "re");

	if (!f || !fgets(line, sizeof(line), f)) {
		fprintf(stderr, "fpu_exporter top: %s: %s\n", path, f ? "empty" : strerror(errno));
		if (f)
			fclose(f);
		return -EINVAL;
	}
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	if (!strchr(line, ':')) {
		fprintf(stderr, "fpu_exporter top: %s: expected user:password\n", path);
		return -EINVAL;
	}
	top.auth = top_base64(line);
	return 0;
}

static int top_address(const char *a)
{
	const char *colon;

	if (!strncmp(a, "http://", 7))
		a += 7;
	else if (!strncmp(a, "https://", 8)) {
		fprintf(stderr, "fpu_exporter top: TLS is not supported; read the daemon over plain HTTP\n");
		return -EINVAL;
	}
	if (a[0] == '[') {
		const char *close = strchr(a, ']');

		if (!close || close[1] != ':')
			goto bad;
		snprintf(top.host, sizeof(top.host), "%.*s", (int)(close - a - 1), a + 1);
		snprintf(top.port, sizeof(top.port), "%s", close + 2);
	} else {
		colon = strrchr(a, ':');
		if (!colon)
			goto bad;
		snprintf(top.host, sizeof(top.host), "%.*s", (int)(colon - a), a);
		snprintf(top.port, sizeof(top.port), "%.*s", (int)strcspn(colon + 1, "/"), colon + 1);
	}
	if (!top.host[0])
		snprintf(top.host, sizeof(top.host), "localhost");
	if (!top.port[0])
		goto bad;
	return 0;
bad:
	fprintf(stderr, "fpu_exporter top: address \"%s\": expected host:port\n", a);
	return -EINVAL;
}

int top_main(int argc, char **argv)
{
	enum { O_LISTEN = 1, O_AUTH, O_ONCE, O_JSON, O_VIEW, O_FILTER, O_HELP };
	static const struct option longopts[] = {
		{ "web.listen-address", required_argument, NULL, O_LISTEN },
		{ "basic-auth-file", required_argument, NULL, O_AUTH },
		{ "once", no_argument, NULL, O_ONCE },
		{ "json", no_argument, NULL, O_JSON },
		{ "view", required_argument, NULL, O_VIEW },
		{ "filter", required_argument, NULL, O_FILTER },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct top_snap prev = { 0 }, cur = { 0 };
	struct sigaction sa = { .sa_handler = top_onsig };
	char err[512];
	int c, rc = 1;

	snprintf(top.host, sizeof(top.host), "localhost");
	snprintf(top.port, sizeof(top.port), "9659");
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":d:", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			top.interval = strtod(optarg, NULL);
			if (!(top.interval >= 0.1 && top.interval <= 3600)) {
				fprintf(stderr, "fpu_exporter top: -d %s: between 0.1 and 3600 seconds\n", optarg);
				return 2;
			}
			break;
		case O_LISTEN:
			if (top_address(optarg) < 0)
				return 2;
			break;
		case O_AUTH:
			if (top_auth_file(optarg) < 0)
				return 2;
			break;
		case O_ONCE: top.once = 1; break;
		case O_JSON: top.json = top.once = 1; break;
		case O_VIEW:
			top.view = !strcmp(optarg, "cgroup");
			break;
		case O_FILTER:
			snprintf(top.filter, sizeof(top.filter), "%s", optarg);
			break;
		case O_HELP:
			top_usage(stdout);
			return 0;
		default:
			fprintf(stderr, "fpu_exporter top: bad flag %s (see top --help)\n", argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "fpu_exporter top: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	top.color = !top.once && top_has_colors();
	sigaction(SIGWINCH, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (top_status(err, sizeof(err)) < 0 || top_read(&prev, err, sizeof(err)) < 0) {
		fprintf(stderr, "fpu_exporter top: %s\n", err);
		goto out;
	}
	if (top.once) {
		struct timespec d = { (time_t)top.interval,
				      (long)((top.interval - floor(top.interval)) * 1e9) };

		while (nanosleep(&d, &d) < 0 && errno == EINTR && !top_quit)
			;
		if (top_read(&cur, err, sizeof(err)) < 0) {
			fprintf(stderr, "fpu_exporter top: %s\n", err);
			goto out;
		}
		top_rates(&cur, &prev);
		top_sort(&cur);
		if (top.json) {
			top_json(&cur);
		} else {
			struct buf b = { 0 };

			top_header(&b, &cur, 0);
			buf_append(&b, "\n", 1);
			top_table(&b, &cur, 0, 0, 0, 0);
			buf_append(&b, "\n", 1);
			top.view = 1;
			top_sort(&cur);
			top_table(&b, &cur, 1, 0, 0, 0);
			fwrite(b.data, 1, b.len, stdout);
			buf_free(&b);
		}
		rc = 0;
		goto out;
	}
	/* the first screen shows totals; rates from the next reading on */
	cur = prev;
	memset(&prev, 0, sizeof(prev));
	rc = top_interactive(&prev, &cur);
out:
	top_snap_free(&prev);
	top_snap_free(&cur);
	free(top.auth);
	return rc;
}
