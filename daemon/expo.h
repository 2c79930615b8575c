/* expo.h: the Prometheus text formats (0.0.4 and OpenMetrics): buffers, escaping, UTF-8, family headers, samples. */
#ifndef EXPO_H
#define EXPO_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
	/* set by gz_begin(): past flush_at bytes the buffer is drained into a gzip stream */
	void (*flush)(struct buf *b);
	void *flush_ctx;
	size_t flush_at;
};

void buf_reset(struct buf *b);
/* Room for extra more bytes (and a NUL) without reallocating. */
void buf_reserve(struct buf *b, size_t extra);
void buf_free(struct buf *b);
void buf_append(struct buf *b, const char *s, size_t n);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Compressing while rendering: the text passes through in chunks, so a
 * gzip response never holds the whole text.  gz_begin() ties the stream to
 * the render buffer in; gz_end() compresses what is left and unties it.
 * Both return 0, or -1 when zlib fails (out is then not to be used).
 */
struct gz_stream;
struct gz_stream *gz_begin(struct buf *in, struct buf *out);
int gz_end(struct gz_stream *g, struct buf *in);

enum metric_type { METRIC_COUNTER, METRIC_GAUGE };

struct family {
	const char *name;
	enum metric_type type;
	const char *help;
	int info;		/* an info gauge: one series per label set, always 1, never summed */
};

struct label {
	const char *name;
	const char *value;
};

enum expo_format {
	EXPO_TEXT,		/* text/plain; version=0.0.4 */
	EXPO_OPENMETRICS,	/* application/openmetrics-text; version=1.0.0 */
};

/* Appends {a="x",b="y"} (nothing without labels), each value made valid UTF-8 and escaped. */
void expo_labels(struct buf *b, size_t nlabels, const struct label *labels);
/* "# HELP" and "# TYPE" of a family. */
void expo_family_header(struct buf *b, const struct family *f, enum expo_format format);
/*
 * One sample line: the name, then rendered labels in two pieces (prefix, as
 * {a="x", and the rest, as ,b="y"}; either may be empty), then the value.
 */
void expo_sample_u64(struct buf *b, const char *name, size_t name_len, const char *prefix,
		     size_t prefix_len, const char *labels, size_t labels_len, uint64_t value);
/* A whole sample from label pairs: for the self-metrics, rendered straight from their source. */
void expo_add(struct buf *b, const struct family *f, double value, size_t nlabels,
	      const struct label *labels);
void expo_end(struct buf *b, enum expo_format format);

void expo_escape_label(struct buf *b, const char *value);
void expo_escape_help(struct buf *b, const char *help);

/*
 * Copies s into out (size bytes, NUL-terminated) with every byte sequence
 * that is not valid UTF-8 replaced by U+FFFD, the same way every time, so a
 * name keeps one label value.  Returns the length written.
 */
size_t utf8_sanitize(const char *s, char *out, size_t size);
/* A sanitized copy on the heap. */
char *utf8_strdup(const char *s);
/* Is the whole string valid UTF-8? */
int utf8_valid(const char *s, size_t n);

#endif /* EXPO_H */
