/* http.c: libmicrohttpd in external-epoll mode: metrics (text or OpenMetrics, gzip), status, TLS, basic auth. */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>
#include <zlib.h>

#include "expo.h"
#include "http.h"
#include "landing.h"
#include "log.h"
#include "metrics.h"
#include "probes.h"
#include "status.h"
#include "version.h"

#define TYPE_TEXT "text/plain; version=0.0.4; charset=utf-8"
#define TYPE_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"
#define REALM "fpu_exporter"

static struct {
	struct MHD_Daemon *daemon;
	char *cert, *key;	/* PEM given to the running daemon */
	int listen_fd;
	char *telemetry_path;
	struct web_config web;	/* a copy: users for basic auth */
	struct buf body, gz;
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

int http_auth_verify(const struct web_config *w, const char *user, const char *password)
{
	static struct crypt_data cd;
	const char *hash = NULL, *got;
	unsigned char diff = 0;

	if (!w->nusers)
		return 1;
	if (!user || !password)
		return 0;
	for (size_t i = 0; i < w->nusers; i++)
		if (!strcmp(w->users[i].name, user))
			hash = w->users[i].hash;
	/* An unknown user is checked against a real hash too, so both take one bcrypt. */
	memset(&cd, 0, sizeof(cd));
	got = crypt_r(password, hash ? hash : w->users[0].hash, &cd);
	if (!got || strlen(got) != 60)
		return 0;
	for (size_t i = 0; i < 60; i++)
		diff |= (unsigned char)(got[i] ^ (hash ? hash : w->users[0].hash)[i]);
	return hash && diff == 0;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned int status, const char *type,
			       const char *body, size_t len, int gzip)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body,
								 MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (gzip)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* gzip of in into http.gz; 0, or -1 to send it uncompressed. */
static int gzip_body(const struct buf *in)
{
	z_stream z = { 0 };
	int rc;

	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	buf_reset(&http.gz);
	buf_reserve(&http.gz, deflateBound(&z, in->len));
	z.next_in = (Bytef *)in->data;
	z.avail_in = (uInt)in->len;
	z.next_out = (Bytef *)http.gz.data;
	z.avail_out = (uInt)http.gz.cap;
	rc = deflate(&z, Z_FINISH);
	http.gz.len = z.total_out;
	deflateEnd(&z);
	return rc == Z_STREAM_END ? 0 : -1;
}

static int accepts(struct MHD_Connection *conn, const char *header, const char *what)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, header);
	const char *at = v ? strstr(v, what) : NULL;

	/* "what;q=0" declines it */
	return at && strncmp(at + strlen(what), ";q=0", 4) != 0;
}

/* The live page is daemon/landing.c's; its script and style run under the nonce only. */
static void landing_page(struct buf *b, const char *nonce)
{
	landing_render(b, http.telemetry_path, nonce);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_size, void **con_cls)
{
	static const char not_found[] = "404 page not found\n";
	static const char not_allowed[] = "405 method not allowed\n";
	static const char unauthorized[] = "401 Unauthorized\n";
	static const char text[] = "text/plain; charset=utf-8";

	(void)cls, (void)version, (void)upload_data, (void)upload_size, (void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text, not_allowed,
			       sizeof(not_allowed) - 1, 0);
	if (http.web.nusers) {
		char *pass = NULL, *user = MHD_basic_auth_get_username_password(conn, &pass);
		int ok = http_auth_verify(&http.web, user, pass);

		MHD_free(user);
		MHD_free(pass);
		if (!ok) {
			struct MHD_Response *r = MHD_create_response_from_buffer(
				sizeof(unauthorized) - 1, (void *)unauthorized, MHD_RESPMEM_PERSISTENT);
			enum MHD_Result ret = MHD_queue_basic_auth_fail_response(conn, REALM, r);

			MHD_destroy_response(r);
			return ret;
		}
	}
	/* a burst of series left a big buffer: let it go */
	if (http.body.cap > (4u << 20) && http.body.len < http.body.cap / 8) {
		buf_free(&http.body);
		buf_free(&http.gz);
	}
	buf_reset(&http.body);
	if (strcmp(url, http.telemetry_path) == 0) {
		int om = accepts(conn, MHD_HTTP_HEADER_ACCEPT, "application/openmetrics-text");

		metrics_render(&http.body, om ? EXPO_OPENMETRICS : EXPO_TEXT);
		if (accepts(conn, MHD_HTTP_HEADER_ACCEPT_ENCODING, "gzip") && gzip_body(&http.body) == 0)
			return respond(conn, MHD_HTTP_OK, om ? TYPE_OPENMETRICS : TYPE_TEXT,
				       http.gz.data, http.gz.len, 1);
		return respond(conn, MHD_HTTP_OK, om ? TYPE_OPENMETRICS : TYPE_TEXT,
			       http.body.data, http.body.len, 0);
	}
	if (strcmp(url, "/") == 0) {
		char nonce[LANDING_NONCE_LEN], csp[LANDING_CSP_LEN];
		struct MHD_Response *r;
		enum MHD_Result ret;

		landing_nonce(nonce);
		landing_csp(csp, sizeof(csp), nonce);
		landing_page(&http.body, nonce);
		r = MHD_create_response_from_buffer(http.body.len, http.body.data, MHD_RESPMEM_MUST_COPY);
		if (!r)
			return MHD_NO;
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
		MHD_add_response_header(r, "Content-Security-Policy", csp);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
		ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
		MHD_destroy_response(r);
		return ret;
	}
	if (strcmp(url, "/healthz") == 0)
		return respond(conn, MHD_HTTP_OK, text, "OK\n", 3, 0);
	if (strcmp(url, "/status") == 0) {
		status_render(&http.body);
		return respond(conn, MHD_HTTP_OK, "application/json", http.body.data, http.body.len, 0);
	}
	return respond(conn, MHD_HTTP_NOT_FOUND, text, not_found, sizeof(not_found) - 1, 0);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_warn("http: %s", line);
}

/* A whole PEM file, NUL-terminated, or NULL (logged). */
static char *read_pem(const char *what, const char *path)
{
	struct stat st;
	char *data;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size > (1 << 20)) {
		log_error("%s %s: %s", what, path, fd < 0 ? strerror(errno) : "unreadable or too large");
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	data = xmalloc((size_t)st.st_size + 1);
	n = read(fd, data, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		log_error("%s %s: short read", what, path);
		free(data);
		return NULL;
	}
	data[n] = '\0';
	return data;
}

/*
 * Starts MHD on the listen socket with the settings.  The socket stays
 * ours: daemons are quiesced before they stop, so they never close it.
 */
static struct MHD_Daemon *start(const struct http_settings *s, char **cert, char **key)
{
	const struct web_config *w = s->web;
	unsigned int flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem tls[4] = { { MHD_OPTION_END, 0, NULL } };
	struct MHD_Daemon *d;

	*cert = *key = NULL;
	if (w && w->cert_file) {
		*cert = read_pem("tls_server_config.cert_file", w->cert_file);
		*key = *cert ? read_pem("tls_server_config.key_file", w->key_file) : NULL;
		if (!*key) {
			free(*cert);
			return NULL;
		}
		flags |= MHD_USE_TLS;
		tls[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, *cert };
		tls[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, *key };
		tls[2] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
			w->min_version && !strcmp(w->min_version, "TLS13") ?
			(void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3" :
			(void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2" };
	}
	d = MHD_start_daemon(flags, 0, NULL, NULL, handle, NULL,
			     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
			     MHD_OPTION_LISTEN_SOCKET, http.listen_fd,
			     MHD_OPTION_CONNECTION_LIMIT, s->max_connections,
			     MHD_OPTION_CONNECTION_TIMEOUT, s->timeout,
			     MHD_OPTION_ARRAY, tls,
			     MHD_OPTION_END);
	if (!d) {
		log_error("starting the HTTP server failed%s",
			  *cert ? " (is the TLS key the certificate's?)" : "");
		free(*cert);
		free(*key);
		*cert = *key = NULL;
	}
	return d;
}

static void stop(struct MHD_Daemon *d, char *cert, char *key)
{
	if (d) {
		MHD_quiesce_daemon(d);
		MHD_stop_daemon(d);
	}
	free(cert);
	free(key);
}

static void keep_settings(const struct http_settings *s)
{
	free(http.telemetry_path);
	http.telemetry_path = xstrdup(s->telemetry_path);
	web_config_free(&http.web);
	if (s->web && s->web->nusers) {
		http.web.users = xcalloc(s->web->nusers, sizeof(*http.web.users));
		for (size_t i = 0; i < s->web->nusers; i++) {
			http.web.users[i].name = xstrdup(s->web->users[i].name);
			http.web.users[i].hash = xstrdup(s->web->users[i].hash);
		}
		http.web.nusers = s->web->nusers;
	}
}

int http_init(const struct http_settings *s)
{
	http.listen_fd = listen_on(s->listen_address);
	if (http.listen_fd < 0)
		return -1;
	http.daemon = start(s, &http.cert, &http.key);
	if (!http.daemon)
		return -1;
	keep_settings(s);
	log_info("listening on %s%s, metrics at %s", s->listen_address,
		 http.cert ? " (TLS)" : "", s->telemetry_path);
	return 0;
}

int http_reload(const struct http_settings *s)
{
	char *cert, *key;
	/* the new daemon accepts on the same socket before the old one stops */
	struct MHD_Daemon *d = start(s, &cert, &key);

	if (!d)
		return -1;
	stop(http.daemon, http.cert, http.key);
	http.daemon = d;
	http.cert = cert;
	http.key = key;
	keep_settings(s);
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
	stop(http.daemon, http.cert, http.key);
	http.daemon = NULL;
	http.cert = http.key = NULL;
	if (http.listen_fd >= 0)
		close(http.listen_fd);
	http.listen_fd = -1;
	free(http.telemetry_path);
	http.telemetry_path = NULL;
	web_config_free(&http.web);
	buf_free(&http.body);
	buf_free(&http.gz);
}
