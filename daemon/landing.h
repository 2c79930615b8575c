/* landing.h: the live landing page: links, probes, running VMs and busiest cgroups with sparklines. */
#ifndef LANDING_H
#define LANDING_H

#include <stddef.h>

#include "expo.h"

#define LANDING_NONCE_LEN 33	/* 32 hex digits and the NUL */
#define LANDING_CSP_LEN 320

/* A fresh nonce for one response's inline script and style. */
void landing_nonce(char out[LANDING_NONCE_LEN]);
/* The Content-Security-Policy that allows exactly the nonce'd script and style, and fetches of /status. */
void landing_csp(char *out, size_t size, const char *nonce);
void landing_render(struct buf *b, const char *telemetry_path, const char *nonce);

#endif /* LANDING_H */
