/* expo.c: Prometheus text format 0.0.4 rendering: escaping, one HELP/TYPE per family, sorted samples. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expo.h"
#include "log.h"

void buf_reserve(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need <= b->cap)
		return;
	b->cap = b->cap ? b->cap : 4096;
	while (b->cap < need)
		b->cap *= 2;
	b->data = xrealloc(b->data, b->cap);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->data);
	*b = (struct buf){ 0 };
}

void buf_append(struct buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void escape(struct buf *b, const char *s, int quote)
{
	for (; *s; s++) {
		switch (*s) {
		case '\\':
			buf_append(b, "\\\\", 2);
			break;
		case '\n':
			buf_append(b, "\\n", 2);
			break;
		case '"':
			if (quote) {
				buf_append(b, "\\\"", 2);
				break;
			}
			/* fallthrough */
		default:
			buf_append(b, s, 1);
		}
	}
}

void expo_escape_label(struct buf *b, const char *value)
{
	escape(b, value, 1);
}

void expo_escape_help(struct buf *b, const char *help)
{
	escape(b, help, 0);
}

void expo_add(struct expo *e, const struct family *f, double value,
	      size_t nlabels, const struct label *labels)
{
	struct buf lb = { 0 };

	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 256;
		e->samples = xrealloc(e->samples, e->cap * sizeof(*e->samples));
	}
	buf_append(&lb, "", 0);	/* "" when there are no labels */
	for (size_t i = 0; i < nlabels; i++) {
		buf_printf(&lb, "%s%s=\"", i ? "," : "{", labels[i].name);
		expo_escape_label(&lb, labels[i].value);
		buf_append(&lb, "\"", 1);
	}
	if (nlabels)
		buf_append(&lb, "}", 1);
	e->samples[e->n++] = (struct sample){ f, lb.data, value };
}

static int sample_cmp(const void *a, const void *b)
{
	const struct sample *x = a, *y = b;
	int c = strcmp(x->family->name, y->family->name);

	return c ? c : strcmp(x->labels, y->labels);
}

static void render_value(struct buf *out, double v)
{
	if (isnan(v))
		buf_append(out, "NaN", 3);
	else if (isinf(v))
		buf_printf(out, "%s", v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e15)
		buf_printf(out, "%.0f", v);
	else {
		/* the shortest of %.15g..%.17g that reads back as the same double */
		char tmp[32];

		for (int prec = 15; prec <= 17; prec++) {
			snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
			if (strtod(tmp, NULL) == v)
				break;
		}
		buf_append(out, tmp, strlen(tmp));
	}
}

/* The labels of a sample with every value replaced by "overflow": {a="x",b="y"} -> {a="overflow",b="overflow"}. */
static char *overflow_labels(const char *labels)
{
	struct buf b = { 0 };

	buf_append(&b, "", 0);
	for (const char *p = labels; *p; ) {
		const char *eq = strstr(p, "=\"");

		if (!eq)
			break;
		buf_append(&b, p, (size_t)(eq - p));
		buf_append(&b, "=\"overflow\"", sizeof("=\"overflow\"") - 1);
		/* skip the escaped value */
		for (p = eq + 2; *p && *p != '"'; p++)
			if (*p == '\\' && p[1])
				p++;
		if (*p)
			p++;
		if (*p == ',' || *p == '}')
			buf_append(&b, p++, 1);
	}
	return b.data;
}

size_t expo_merge(struct expo *e)
{
	size_t w = 0, in_family = 0;

	qsort(e->samples, e->n, sizeof(*e->samples), sample_cmp);
	e->folded = 0;
	for (size_t i = 0; i < e->n; i++) {
		struct sample *s = &e->samples[i];

		if (w && e->samples[w - 1].family == s->family && !strcmp(e->samples[w - 1].labels, s->labels)) {
			if (!s->family->info)
				e->samples[w - 1].value += s->value;
			free(s->labels);
			continue;
		}
		in_family = w && e->samples[w - 1].family == s->family ? in_family + 1 : 1;
		if (e->max_series && in_family > e->max_series && s->labels[0]) {
			char *ov = overflow_labels(s->labels);
			struct sample *last = &e->samples[w - 1];

			e->folded++;
			free(s->labels);
			if (in_family == e->max_series + 1) {	/* the first one over: it becomes the fold */
				s->labels = ov;
				e->samples[w++] = *s;
			} else {
				free(ov);
				last->value += s->value;
			}
			continue;
		}
		e->samples[w++] = *s;
	}
	e->n = w;
	return e->folded;
}

void expo_render(struct expo *e, struct buf *out, enum expo_format format)
{
	const struct family *last = NULL;

	expo_merge(e);
	for (size_t i = 0; i < e->n; i++) {
		struct sample *s = &e->samples[i];

		if (s->family != last) {
			const char *name = s->family->name;
			size_t len = strlen(name);

			/* OpenMetrics names a counter family without its samples' _total. */
			if (format == EXPO_OPENMETRICS && s->family->type == METRIC_COUNTER &&
			    len > 6 && !strcmp(name + len - 6, "_total"))
				len -= 6;
			last = s->family;
			buf_printf(out, "# HELP %.*s ", (int)len, name);
			escape(out, s->family->help, format == EXPO_OPENMETRICS);
			buf_printf(out, "\n# TYPE %.*s %s\n", (int)len, name,
				   s->family->type == METRIC_COUNTER ? "counter" : "gauge");
		}
		buf_printf(out, "%s%s ", s->family->name, s->labels);
		render_value(out, s->value);
		buf_append(out, "\n", 1);
	}
	if (format == EXPO_OPENMETRICS)
		buf_append(out, "# EOF\n", 6);
}

void expo_reset(struct expo *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->samples[i].labels);
	e->n = 0;
}

void expo_free(struct expo *e)
{
	expo_reset(e);
	free(e->samples);
	*e = (struct expo){ 0 };
}
