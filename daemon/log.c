/* log.c: leveled logging to stderr (journald adds time and unit) and allocation that dies on failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static enum log_level current_level = LOG_LVL_INFO;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

int log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > current_level)
		return;
	fprintf(stderr, "fpu_exporter: %s: ", level_names[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void log_lines(enum log_level level, const char *prefix, const char *text)
{
	const char *line = text, *end;

	for (; *line; line = *end ? end + 1 : end) {
		end = line + strcspn(line, "\n");
		if (end > line)
			log_msg(level, "%s: %.*s", prefix, (int)(end - line), line);
	}
}

/* The statistics the verifier ends with, on every kernel since 5.2. */
static int verifier_statistics(const char *line, size_t n)
{
	return (n >= 10 && !strncmp(line, "processed ", 10)) ||
	       (n >= 17 && !strncmp(line, "verification time", 17)) ||
	       (n >= 11 && !strncmp(line, "stack depth", 11));
}

void log_verifier(const char *program, const char *text, char *cause, size_t len)
{
	const char *tail[LOG_VERIFIER_TAIL], *line = text, *end;
	int tail_len[LOG_VERIFIER_TAIL];
	unsigned int n = 0;

	if (len)
		cause[0] = '\0';
	for (; *line; line = *end ? end + 1 : end) {
		end = line + strcspn(line, "\n");
		if (end == line)
			continue;
		log_debug("verifier: %s: %.*s", program, (int)(end - line), line);
		tail[n % LOG_VERIFIER_TAIL] = line;
		tail_len[n++ % LOG_VERIFIER_TAIL] = (int)(end - line);
		if (len && !verifier_statistics(line, (size_t)(end - line)))
			snprintf(cause, len, "%.*s", (int)(end - line), line);
	}
	for (unsigned int i = n > LOG_VERIFIER_TAIL ? n - LOG_VERIFIER_TAIL : 0; i < n; i++)
		log_error("verifier: %s: %.*s", program, tail_len[i % LOG_VERIFIER_TAIL],
			  tail[i % LOG_VERIFIER_TAIL]);
}

void die_oom(void)
{
	fputs("fpu_exporter: error: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (!p)
		die_oom();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		die_oom();
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);

	if (!p)
		die_oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		die_oom();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		die_oom();
	return s;
}
