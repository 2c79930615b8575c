/* log.h: leveled logging to stderr and allocation wrappers that die on failure. */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

int log_level_parse(const char *name, enum log_level *out);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define log_error(...)	log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* Each line of text at level, as "prefix: line"; empty lines are left out. */
void log_lines(enum log_level level, const char *prefix, const char *text);

/*
 * A verifier log of a program the kernel refused: every line at debug level,
 * the last LOG_VERIFIER_TAIL at error level.  cause gets the verifier's last
 * line before its statistics ("invalid func unknown#158"), or "" if none.
 */
#define LOG_VERIFIER_TAIL 3
void log_verifier(const char *program, const char *text, char *cause, size_t len);

/* Out of memory: says so and aborts. */
void die_oom(void) __attribute__((noreturn));
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* LOG_H */
