/* expo.h: the Prometheus text exposition (0.0.4): samples collected per scrape, merged, sorted, rendered. */
#ifndef EXPO_H
#define EXPO_H

#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

void buf_reset(struct buf *b);
/* Room for extra more bytes (and a NUL) without reallocating. */
void buf_reserve(struct buf *b, size_t extra);
void buf_free(struct buf *b);
void buf_append(struct buf *b, const char *s, size_t n);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum metric_type { METRIC_COUNTER, METRIC_GAUGE };

struct family {
	const char *name;
	enum metric_type type;
	const char *help;
	int info;		/* an info gauge: equal series are one, of value 1, not a sum */
};

struct label {
	const char *name;
	const char *value;
};

struct sample {
	const struct family *family;
	char *labels;		/* rendered and escaped: {a="x",b="y"} or "" */
	double value;
};

/* One scrape's samples; reused across scrapes so steady state allocates only label strings. */
struct expo {
	struct sample *samples;
	size_t n, cap;
	size_t max_series;	/* per family, 0 for no limit; the rest fold into one "overflow" series */
	size_t folded;		/* series folded by the last render */
};

void expo_add(struct expo *e, const struct family *f, double value,
	      size_t nlabels, const struct label *labels);
enum expo_format {
	EXPO_TEXT,		/* text/plain; version=0.0.4 */
	EXPO_OPENMETRICS,	/* application/openmetrics-text; version=1.0.0 */
};

/*
 * Sorts by family name then labels, sums samples with equal labels, folds
 * series past max_series; returns how many were folded.  Rendering merges too.
 */
size_t expo_merge(struct expo *e);
/* Appends the text of the merged samples to out. */
void expo_render(struct expo *e, struct buf *out, enum expo_format format);
void expo_reset(struct expo *e);
void expo_free(struct expo *e);

void expo_escape_label(struct buf *b, const char *value);
void expo_escape_help(struct buf *b, const char *help);

#endif /* EXPO_H */
