/* http.h: the HTTP endpoint (libmicrohttpd, driven by the daemon's own event loop). */
#ifndef HTTP_H
#define HTTP_H

/* Splits "host:port", "[v6]:port" or ":port"; host is "" for any address. 0, or -1 with err set. */
int http_parse_address(const char *address, char *host, size_t hostlen, char *port,
		       size_t portlen, char *err, size_t errlen);
/* Binds the listen socket and starts serving; -1 (logged) on failure. */
int http_init(const char *listen_address, const char *telemetry_path);
/* The fd to poll for readability, and how long the loop may sleep (-1: forever). */
int http_poll_fd(void);
int http_timeout_ms(void);
/* Serves whatever is ready. */
void http_run(void);
void http_fini(void);

#endif /* HTTP_H */
