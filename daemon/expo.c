/* expo.c: Prometheus text formats: escaping, UTF-8 repair, family headers and sample lines. */
#include <math.h>
#include <stdint.h>
#include <sys/mman.h>
#include <zlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expo.h"
#include "log.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23	/* Linux 5.14 */
#endif
#define PREFAULT_MIN (1024 * 1024)

/*
 * Faults in the pages of [p, p + n) in one call: a scrape's text fills a
 * fresh buffer of megabytes, and a fault a page costs more than the copy.
 * Older kernels refuse it (EINVAL); the pages then fault in as they are written.
 */
static void prefault(char *p, size_t n)
{
	uintptr_t start = ((uintptr_t)p + 4095) & ~(uintptr_t)4095, end = ((uintptr_t)p + n) & ~(uintptr_t)4095;

	if (end > start)
		madvise((void *)start, end - start, MADV_POPULATE_WRITE);
}

void buf_reserve(struct buf *b, size_t extra)
{
	size_t need, old;

	if (b->flush && b->len && b->len + extra + 1 > b->flush_at)
		b->flush(b);
	need = b->len + extra + 1;

	if (need <= b->cap)
		return;
	old = b->cap;
	b->cap = b->cap ? b->cap : 4096;
	while (b->cap < need)
		b->cap *= 2;
	b->data = xrealloc(b->data, b->cap);
	if (b->cap >= PREFAULT_MIN)
		prefault(b->data + old, b->cap - old);
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

#define GZ_CHUNK (64 * 1024)

struct gz_stream {
	z_stream z;
	struct buf *out;
	int failed;
};

/* Deflates in's bytes into out, growing out as needed. */
static void gz_push(struct gz_stream *g, struct buf *in, int flush)
{
	int rc;

	g->z.next_in = (Bytef *)in->data;
	g->z.avail_in = (uInt)in->len;
	do {
		buf_reserve(g->out, GZ_CHUNK);
		g->z.next_out = (Bytef *)g->out->data + g->out->len;
		g->z.avail_out = (uInt)(g->out->cap - g->out->len - 1);
		rc = deflate(&g->z, flush);
		g->out->len = g->out->cap - 1 - g->z.avail_out;
		if (rc == Z_STREAM_ERROR)
			g->failed = 1;
	} while (!g->failed && (g->z.avail_in || (flush == Z_FINISH && rc != Z_STREAM_END)));
	in->len = 0;
}

static void gz_flush(struct buf *in)
{
	gz_push(in->flush_ctx, in, Z_NO_FLUSH);
}

struct gz_stream *gz_begin(struct buf *in, struct buf *out)
{
	struct gz_stream *g = xcalloc(1, sizeof(*g));

	/* level 1: a scrape's text compresses about 20x at it, several times faster than at 6 */
	if (deflateInit2(&g->z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(g);
		return NULL;
	}
	g->out = out;
	buf_reset(out);
	in->flush = gz_flush;
	in->flush_ctx = g;
	in->flush_at = GZ_CHUNK;
	return g;
}

int gz_end(struct gz_stream *g, struct buf *in)
{
	int failed;

	in->flush = NULL;
	in->flush_ctx = NULL;
	gz_push(g, in, Z_FINISH);
	failed = g->failed;
	deflateEnd(&g->z);
	free(g);
	return failed ? -1 : 0;
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

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if there is none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n; ) {
		size_t l = utf8_seq(p + i, n - i);

		if (!l)
			return 0;
		i += l;
	}
	return 1;
}

size_t utf8_sanitize(const char *s, char *out, size_t size)
{
	static const char fffd[] = "\xef\xbf\xbd";
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), w = 0;

	if (!size)
		return 0;
	for (size_t i = 0; i < n; ) {
		size_t l = utf8_seq(p + i, n - i);
		const char *src = l ? s + i : fffd;
		size_t cl = l ? l : 3;

		if (w + cl >= size)
			break;	/* whole characters only */
		memcpy(out + w, src, cl);
		w += cl;
		i += l ? l : 1;
	}
	out[w] = '\0';
	return w;
}

char *utf8_strdup(const char *s)
{
	size_t size = strlen(s) * 3 + 1;	/* each bad byte may grow to 3 */
	char *out = xmalloc(size);

	utf8_sanitize(s, out, size);
	return out;
}

static void escape(struct buf *b, const char *s, int quote)
{
	const char *run = s;

	for (; *s; s++) {
		const char *rep;

		switch (*s) {
		case '\\':
			rep = "\\\\";
			break;
		case '\n':
			rep = "\\n";
			break;
		case '"':
			if (quote) {
				rep = "\\\"";
				break;
			}
			continue;
		default:
			continue;
		}
		buf_append(b, run, (size_t)(s - run));
		buf_append(b, rep, 2);
		run = s + 1;
	}
	buf_append(b, run, (size_t)(s - run));
}

void expo_escape_label(struct buf *b, const char *value)
{
	escape(b, value, 1);
}

void expo_escape_help(struct buf *b, const char *help)
{
	escape(b, help, 0);
}

void expo_labels(struct buf *b, size_t nlabels, const struct label *labels)
{
	char small[512];

	for (size_t i = 0; i < nlabels; i++) {
		const char *v = labels[i].value;
		char *heap = NULL;

		buf_append(b, i ? "," : "{", 1);
		buf_append(b, labels[i].name, strlen(labels[i].name));
		buf_append(b, "=\"", 2);
		if (!utf8_valid(v, strlen(v))) {
			if (strlen(v) * 3 < sizeof(small))
				utf8_sanitize(v, small, sizeof(small)), v = small;
			else
				v = heap = utf8_strdup(v);
		}
		expo_escape_label(b, v);
		free(heap);
		buf_append(b, "\"", 1);
	}
	if (nlabels)
		buf_append(b, "}", 1);
}

static size_t family_name_len(const struct family *f, enum expo_format format)
{
	size_t len = strlen(f->name);

	/* OpenMetrics names a counter family without its samples' _total. */
	if (format == EXPO_OPENMETRICS && f->type == METRIC_COUNTER && len > 6 &&
	    !strcmp(f->name + len - 6, "_total"))
		len -= 6;
	return len;
}

void expo_family_header(struct buf *b, const struct family *f, enum expo_format format)
{
	size_t len = family_name_len(f, format);

	buf_append(b, "# HELP ", 7);
	buf_append(b, f->name, len);
	buf_append(b, " ", 1);
	escape(b, f->help, format == EXPO_OPENMETRICS);
	buf_append(b, "\n# TYPE ", 8);
	buf_append(b, f->name, len);
	if (f->type == METRIC_COUNTER)
		buf_append(b, " counter\n", 9);
	else
		buf_append(b, " gauge\n", 7);
}

/* Writes v in decimal at out (at most 20 bytes, no NUL); returns the length. */
static size_t u64_digits(char *out, uint64_t v)
{
	char tmp[20];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	memcpy(out, tmp + i, sizeof(tmp) - i);
	return sizeof(tmp) - i;
}

static void render_u64(struct buf *b, uint64_t v)
{
	char tmp[20];

	buf_append(b, tmp, u64_digits(tmp, v));
}

static void render_double(struct buf *b, double v)
{
	char tmp[32];

	if (isnan(v)) {
		buf_append(b, "NaN", 3);
	} else if (isinf(v)) {
		buf_append(b, v > 0 ? "+Inf" : "-Inf", 4);
	} else if (v == floor(v) && fabs(v) < 1e15) {
		if (v < 0)
			buf_append(b, "-", 1);
		render_u64(b, (uint64_t)fabs(v));
	} else {
		/* the shortest of %.15g..%.17g that reads back as the same double */
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
			if (strtod(tmp, NULL) == v)
				break;
		}
		buf_append(b, tmp, strlen(tmp));
	}
}

void expo_sample_u64(struct buf *b, const char *name, size_t name_len, const char *prefix,
		     size_t prefix_len, const char *labels, size_t labels_len, uint64_t value)
{
	char *p;

	buf_reserve(b, name_len + prefix_len + labels_len + 23);
	p = b->data + b->len;
	memcpy(p, name, name_len);
	p += name_len;
	memcpy(p, prefix, prefix_len);
	p += prefix_len;
	memcpy(p, labels, labels_len);
	p += labels_len;
	*p++ = ' ';
	p += u64_digits(p, value);
	*p++ = '\n';
	*p = '\0';
	b->len = (size_t)(p - b->data);
}

void expo_add(struct buf *b, const struct family *f, double value, size_t nlabels,
	      const struct label *labels)
{
	buf_append(b, f->name, strlen(f->name));
	expo_labels(b, nlabels, labels);
	buf_append(b, " ", 1);
	render_double(b, value);
	buf_append(b, "\n", 1);
}

void expo_end(struct buf *b, enum expo_format format)
{
	if (format == EXPO_OPENMETRICS)
		buf_append(b, "# EOF\n", 6);
}
