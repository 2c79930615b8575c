/* http.c: libmicrohttpd in external-epoll mode: /metrics rendered from the maps, a landing page, 404 elsewhere. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "expo.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "probes.h"
#include "version.h"

#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define MAX_CONNECTIONS 64
#define CONNECTION_TIMEOUT_S 10

static struct {
	struct MHD_Daemon *daemon;
	int listen_fd;
	const char *telemetry_path;
	struct buf body;
} http = { .listen_fd = -1 };

int http_parse_address(const char *address, char *host, size_t hostlen, char *port,
		       size_t portlen, char *err, size_t errlen)
{
	const char *colon, *h = address;
	size_t hl;

	if (address[0] == '[') {
		const char *close = strchr(address, ']');

		if (!close || close[1] != ':') {
			snprintf(err, errlen, "listen address \"%s\": expected [IPv6]:port", address);
			return -1;
		}
		h = address + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(address, ':');
		if (!colon || strchr(address, ':') != colon) {
			snprintf(err, errlen, "listen address \"%s\": expected host:port or :port", address);
			return -1;
		}
		hl = (size_t)(colon - address);
	}
	if (hl >= hostlen || strlen(colon + 1) >= portlen || !colon[1] ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) || atoi(colon + 1) > 65535) {
		snprintf(err, errlen, "listen address \"%s\": bad port", address);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, portlen, "%s", colon + 1);
	return 0;
}

static int listen_on(const char *address)
{
	char host[256], port[16], err[300];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res, *ai;
	int fd = -1, rc, last_errno = 0, one = 1, zero = 0;

	if (http_parse_address(address, host, sizeof(host), port, sizeof(port), err, sizeof(err))) {
		log_error("%s", err);
		return -1;
	}
	/* ":port" listens on every address, IPv6 and IPv4 alike when the host has IPv6. */
	hints.ai_family = host[0] ? AF_UNSPEC : AF_INET6;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc && !host[0]) {
		hints.ai_family = AF_INET;
		rc = getaddrinfo(NULL, port, &hints, &res);
	}
	if (rc) {
		log_error("listen address \"%s\": %s", address, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			last_errno = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6 && !host[0])
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
			break;
		last_errno = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		log_error("listening on %s: %s", address, strerror(last_errno));
	return fd;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned int status,
			       const char *type, const char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body,
								 MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static void landing_page(struct buf *b)
{
	const struct probe_status *st;
	int n = probes_status(&st);

	buf_printf(b, "<!DOCTYPE html>\n<html><head><title>FPU Exporter</title></head><body>\n"
		   "<h1>FPU Exporter %s</h1>\n"
		   "<p>x86 FPU and KVM guest FPU context switching, as Prometheus metrics.</p>\n"
		   "<p><a href=\"%s\">Metrics</a></p>\n<h2>Probes</h2>\n<ul>\n",
		   FPU_EXPORTER_VERSION, http.telemetry_path);
	for (int i = 0; i < n; i++) {
		buf_printf(b, "<li>%s: %s", st[i].probe, st[i].attached ? "attached" : "not attached");
		if (!st[i].attached)
			buf_printf(b, " (%s)", st[i].why);
		buf_printf(b, "</li>\n");
	}
	buf_printf(b, "</ul>\n</body></html>\n");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_size, void **con_cls)
{
	static const char not_found[] = "404 page not found\n";
	static const char not_allowed[] = "405 method not allowed\n";

	(void)cls, (void)version, (void)upload_data, (void)upload_size, (void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
			       not_allowed, sizeof(not_allowed) - 1);
	buf_reset(&http.body);
	if (strcmp(url, http.telemetry_path) == 0) {
		metrics_render(&http.body);
		return respond(conn, MHD_HTTP_OK, CONTENT_TYPE_METRICS, http.body.data, http.body.len);
	}
	if (strcmp(url, "/") == 0) {
		landing_page(&http.body);
		return respond(conn, MHD_HTTP_OK, "text/html; charset=utf-8", http.body.data,
			       http.body.len);
	}
	return respond(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", not_found,
		       sizeof(not_found) - 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_warn("http: %s", line);
}

int http_init(const char *listen_address, const char *telemetry_path)
{
	http.telemetry_path = telemetry_path;
	http.listen_fd = listen_on(listen_address);
	if (http.listen_fd < 0)
		return -1;
	http.daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
				       handle, NULL,
				       MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				       MHD_OPTION_LISTEN_SOCKET, http.listen_fd,
				       MHD_OPTION_CONNECTION_LIMIT, (unsigned int)MAX_CONNECTIONS,
				       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONNECTION_TIMEOUT_S,
				       MHD_OPTION_END);
	if (!http.daemon) {
		log_error("starting the HTTP server on %s failed", listen_address);
		return -1;
	}
	http.listen_fd = -1;	/* MHD closes it when stopped */
	log_info("listening on %s, metrics at %s", listen_address, telemetry_path);
	return 0;
}

int http_poll_fd(void)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(http.daemon,
							       MHD_DAEMON_INFO_EPOLL_FD);

	return info ? info->epoll_fd : -1;
}

int http_timeout_ms(void)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (MHD_get_timeout(http.daemon, &ms) != MHD_YES)
		return -1;
	return ms > 60000 ? 60000 : (int)ms;
}

void http_run(void)
{
	MHD_run(http.daemon);
}

void http_fini(void)
{
	if (http.daemon)
		MHD_stop_daemon(http.daemon);
	http.daemon = NULL;
	if (http.listen_fd >= 0)
		close(http.listen_fd);
	http.listen_fd = -1;
	buf_free(&http.body);
}
