/* http.h: the HTTP endpoint (libmicrohttpd, driven by the daemon's own event loop). */
#ifndef HTTP_H
#define HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct http_settings {
	const char *listen_address;
	const char *telemetry_path;
	const struct web_config *web;	/* TLS and basic auth; NULL for neither */
	unsigned int max_connections;
	unsigned int timeout;		/* seconds a connection may stay idle */
};

/* Splits "host:port", "[v6]:port" or ":port"; host is "" for any address. 0, or -1 with err set. */
int http_parse_address(const char *address, char *host, size_t hostlen, char *port,
		       size_t portlen, char *err, size_t errlen);
/* Reads the TLS certificate and key of w, if any, and checks they make a pair; -1 with err set. */
int http_check_tls(const struct web_config *w, char *err, size_t errlen);
/* Binds the listen socket and starts serving; -1 (logged) on failure. */
int http_init(const struct http_settings *s);
/* New settings on the same socket (the listen address cannot change); -1 keeps the old ones. */
int http_reload(const struct http_settings *s);
/* The fd to poll for readability, and how long the loop may sleep (-1: forever). */
int http_poll_fd(void);
int http_timeout_ms(void);
/* Serves whatever is ready. */
void http_run(void);
void http_fini(void);

/*
 * Basic auth against bcrypt hashes; an unknown user costs one bcrypt too, and
 * a password of passlen bytes with a NUL inside matches none. Exposed for tests.
 */
int http_auth_verify(const struct web_config *w, const char *user, const char *password,
		     size_t passlen);
/* Content negotiation on Accept and Accept-Encoding values (NULL: no header), media ranges and q-values. */
bool http_wants_openmetrics(const char *accept);
bool http_wants_gzip(const char *accept_encoding);
/* "Basic base64(user:password)" -> user and password (which may hold NULs); 0, or -1 if malformed. */
int http_basic_credentials(const char *value, size_t len, char **user, char **pass,
			   size_t *passlen);

#endif /* HTTP_H */
