/* http.c: libmicrohttpd on the loop's epoll: metrics (negotiated text or OpenMetrics, gzip), status, TLS, basic auth (bcrypt on a worker thread), request deadlines and shedding, reloads that keep or drain the server. */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
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
/* the kernel caps it at net.core.somaxconn: connections wait there, not in SYN retries */
#define LISTEN_BACKLOG 4096
/* connections being shed still count for MHD: room for them above web.max_connections */
#define SHED_SLACK 16
/* verified credentials remembered, as hashes */
#define AUTH_CACHE 64
/* bcrypts that may fail in a row, and then per second */
#define AUTH_BURST 10
#define AUTH_RATE 2

struct server;

/* One connection, from accept to close. */
struct conn {
	struct conn *prev, *next;	/* in its server's waiting list */
	struct server *srv;
	int fd;
	int64_t since;		/* ms: since when it waits for a request */
	bool waiting, served, shed;
};

/* Connections waiting for a request, oldest first. */
struct conn_list {
	struct conn *head, *tail;
};

/* One MHD daemon on a dup of the listen socket, with what it was started with. */
struct server {
	struct MHD_Daemon *daemon;
	char *cert, *key, *min_version;	/* TLS: PEM and version given to MHD */
	unsigned int max_connections, timeout;
	unsigned int nconns, nshed;
	struct conn_list fresh;	/* waiting for their first request */
	struct conn_list idle;	/* kept alive after a response, waiting for the next */
	int64_t drain_until;	/* ms: once quiesced, stopped by then at the latest */
};

static struct {
	int listen_fd;
	int epfd;		/* polled by the loop: the servers' epoll fds */
	struct server *cur;	/* accepts and serves */
	struct server *old;	/* replaced by a reload: finishes its requests, accepts none */
	char *telemetry_path;
	struct web_config web;	/* a copy: users for basic auth */
	struct buf body, gz;
} http = { .listen_fd = -1, .epfd = -1 };

/* One request's state across the access handler's calls. */
struct req {
	struct auth_job *job;	/* a bcrypt queued or done, the connection suspended meanwhile */
};

/* A bcrypt for the worker thread: copies, so the connection can go on without it. */
struct auth_job {
	struct auth_job *next;
	struct MHD_Connection *conn;
	struct server *srv;
	char *user, *pass;
	char *hash;		/* the user's, or the first user's for an unknown name */
	bool known;
	unsigned char key[32];	/* the cache key */
	bool ok;
};

/*
 * Basic auth: bcrypt runs on one worker thread, never on the loop; what it
 * verified is remembered (keyed by a SHA-256 of user, stored hash and
 * password, as exporter-toolkit does); bcrypts that fail are rate-limited.
 */
static struct {
	pthread_t thread;
	bool started, quit;
	pthread_mutex_t lock;
	pthread_cond_t work, idle;
	struct auth_job *queue, *busy;	/* under lock */
	int wake;		/* eventfd in http.epfd: MHD does not wake an external loop on resume */
	/* the loop's alone: */
	unsigned char cache[AUTH_CACHE][32];
	unsigned int ncache, next;
	double tokens;
	int64_t refilled;
} auth = { .lock = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
	   .idle = PTHREAD_COND_INITIALIZER, .wake = -1, .tokens = AUTH_BURST };

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

/* A socket bound and listening on the first address of host:port in family that works; -errno. */
static int listen_family(const char *host, const char *port, int family)
{
	struct addrinfo hints = { .ai_family = family, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE }, *res, *ai;
	int fd = -EADDRNOTAVAIL, one = 1, zero = 0;

	if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res))
		return -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			fd = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6 && !host[0])
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, LISTEN_BACKLOG) == 0)
			break;
		close(fd);
		fd = -errno;
	}
	freeaddrinfo(res);
	return fd;
}

static int listen_on(const char *address)
{
	char host[256], port[16], err[300];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
	int fd, rc;

	if (http_parse_address(address, host, sizeof(host), port, sizeof(port), err, sizeof(err))) {
		log_error("%s", err);
		return -1;
	}
	if (host[0]) {
		rc = getaddrinfo(host, port, &hints, &res);
		if (rc) {
			log_error("listen address \"%s\": %s", address, gai_strerror(rc));
			return -1;
		}
		freeaddrinfo(res);
		fd = listen_family(host, port, AF_UNSPEC);
	} else {
		/* ":port": IPv6 and IPv4 alike on one socket; IPv4 alone where the
		 * kernel has no IPv6 (ipv6.disable=1: EAFNOSUPPORT) */
		fd = listen_family(host, port, AF_INET6);
		if (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL)
			fd = listen_family(host, port, AF_INET);
	}
	if (fd < 0)
		log_error("listening on %s: %s", address, strerror(-fd));
	return fd < 0 ? -1 : fd;
}

static void wait_unlink(struct conn *c)
{
	struct server *s = c->srv;

	struct conn_list *l = c->served ? &s->idle : &s->fresh;

	if (!c->waiting)
		return;
	*(c->prev ? &c->prev->next : &l->head) = c->next;
	*(c->next ? &c->next->prev : &l->tail) = c->prev;
	c->prev = c->next = NULL;
	c->waiting = false;
}

/* From now on, c waits for a request: it has web.timeout to send its headers. */
static void wait_append(struct conn *c)
{
	struct server *s = c->srv;
	struct conn_list *l;

	wait_unlink(c);
	l = c->served ? &s->idle : &s->fresh;
	c->since = now_ms();
	c->prev = l->tail;
	*(l->tail ? &l->tail->next : &l->head) = c;
	l->tail = c;
	c->waiting = true;
}

/*
 * Closes c the way its peer would: MHD reads the end of the stream at its
 * next pass and closes the connection itself (it owns the fd).
 */
static void shed(struct conn *c)
{
	wait_unlink(c);
	c->shed = true;
	c->srv->nshed++;
	shutdown(c->fd, SHUT_RDWR);
}

static struct conn *conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* A connection of a server that a reload replaced: no keep-alive. */
static bool draining(struct MHD_Connection *conn)
{
	struct conn *c = conn_of(conn);

	return c && c->srv != http.cur;
}

int http_auth_verify(const struct web_config *w, const char *user, const char *password,
		     size_t passlen)
{
	struct crypt_data *cd;
	const char *hash = NULL, *got;
	unsigned char diff = 0;
	int ok;

	if (!w->nusers)
		return 1;
	if (!user || !password)
		return 0;
	for (size_t i = 0; i < w->nusers; i++)
		if (!strcmp(w->users[i].name, user))
			hash = w->users[i].hash;
	/* An unknown user is checked against a real hash too, so both take one
	 * bcrypt.  bcrypt reads a C string: a NUL inside would cut the password. */
	cd = xcalloc(1, sizeof(*cd));
	got = crypt_r(password, hash ? hash : w->users[0].hash, cd);
	ok = got && strlen(got) == 60;
	for (size_t i = 0; ok && i < 60; i++)
		diff |= (unsigned char)(got[i] ^ (hash ? hash : w->users[0].hash)[i]);
	free(cd);
	return ok && hash && diff == 0 && strlen(password) == passlen;
}

static int b64_value(unsigned char ch)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *at = ch ? strchr(alphabet, ch) : NULL;

	return at ? (int)(at - alphabet) : -1;
}

int http_basic_credentials(const char *value, size_t len, char **user, char **pass,
			   size_t *passlen)
{
	unsigned char *out;
	size_t n = 0, i = 6;
	unsigned int acc = 0, bits = 0, pad = 0;
	char *colon;

	*user = *pass = NULL;
	if (len < 6 || strncasecmp(value, "Basic ", 6))
		return -1;
	while (i < len && value[i] == ' ')
		i++;
	out = xmalloc(len);
	for (; i < len; i++) {
		int v = b64_value((unsigned char)value[i]);

		if (value[i] == '=' && (pad || bits) && pad < 2) {
			pad++;
			continue;
		}
		if (v < 0 || pad) {
			free(out);
			return -1;
		}
		acc = acc << 6 | (unsigned int)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	colon = memchr(out, ':', n);
	if (!colon || memchr(out, '\0', (size_t)(colon - (char *)out))) {
		free(out);
		return -1;
	}
	*user = xmalloc((size_t)(colon - (char *)out) + 1);
	memcpy(*user, out, (size_t)(colon - (char *)out));
	(*user)[colon - (char *)out] = '\0';
	*passlen = n - (size_t)(colon + 1 - (char *)out);
	*pass = xmalloc(*passlen + 1);
	memcpy(*pass, colon + 1, *passlen);
	(*pass)[*passlen] = '\0';
	free(out);
	return 0;
}

static void auth_key(unsigned char key[32], const char *user, const char *hash, const char *pass,
		     size_t passlen)
{
	gnutls_hash_hd_t h;

	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
		die_oom();
	gnutls_hash(h, user, strlen(user) + 1);
	gnutls_hash(h, hash, strlen(hash) + 1);
	gnutls_hash(h, pass, passlen);
	gnutls_hash_deinit(h, key);
}

static bool auth_cached(const unsigned char key[32])
{
	for (unsigned int i = 0; i < auth.ncache; i++)
		if (!memcmp(auth.cache[i], key, 32))
			return true;
	return false;
}

static void auth_remember(const unsigned char key[32])
{
	if (auth_cached(key))
		return;
	memcpy(auth.cache[auth.next], key, 32);
	auth.next = (auth.next + 1) % AUTH_CACHE;
	if (auth.ncache < AUTH_CACHE)
		auth.ncache++;
}

/* A token for one more bcrypt, if failures have not used them up. */
static bool auth_token(void)
{
	int64_t now = now_ms();

	auth.tokens += (double)(now - auth.refilled) * AUTH_RATE / 1000;
	auth.refilled = now;
	if (auth.tokens > AUTH_BURST)
		auth.tokens = AUTH_BURST;
	if (auth.tokens < 1)
		return false;
	auth.tokens -= 1;
	return true;
}

static void job_free(struct auth_job *j)
{
	if (!j)
		return;
	free(j->user);
	free(j->pass);
	free(j->hash);
	free(j);
}

static void *auth_worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&auth.lock);
	for (;;) {
		struct auth_job *j;
		struct web_user u;
		struct web_config w = { .users = &u, .nusers = 1 };

		while (!auth.queue && !auth.quit)
			pthread_cond_wait(&auth.work, &auth.lock);
		if (auth.quit)
			break;
		j = auth.busy = auth.queue;
		auth.queue = j->next;
		pthread_mutex_unlock(&auth.lock);
		u = (struct web_user){ j->user, j->hash };
		/* an unknown name costs the same bcrypt, and fails */
		j->ok = http_auth_verify(&w, j->user, j->pass, strlen(j->pass)) && j->known;
		/* MHD is not called under our lock; busy until it is back, so
		 * auth_cancel() waits for it before its server stops */
		MHD_resume_connection(j->conn);
		if (eventfd_write(auth.wake, 1) < 0)
			log_error("http: waking the loop: %s", strerror(errno));
		pthread_mutex_lock(&auth.lock);
		auth.busy = NULL;
		pthread_cond_broadcast(&auth.idle);
	}
	pthread_mutex_unlock(&auth.lock);
	return NULL;
}

/* No job of s left with the worker: queued ones fail, a running one is waited for. */
static void auth_cancel(struct server *s)
{
	struct auth_job **jp;

	pthread_mutex_lock(&auth.lock);
	for (jp = &auth.queue; *jp;) {
		struct auth_job *j = *jp;

		if (j->srv != s) {
			jp = &j->next;
			continue;
		}
		*jp = j->next;
		MHD_resume_connection(j->conn);
	}
	while (auth.busy && auth.busy->srv == s)
		pthread_cond_wait(&auth.idle, &auth.lock);
	pthread_mutex_unlock(&auth.lock);
}

enum auth_result { AUTH_OK, AUTH_FAILED, AUTH_LIMITED, AUTH_PENDING };

/*
 * Checks the request's credentials: from the cache, or by suspending the
 * connection while the worker runs bcrypt (AUTH_PENDING; the handler is
 * called again once it is done).
 */
static enum auth_result auth_check(struct MHD_Connection *conn, struct req *rq)
{
	const char *value = NULL, *hash = NULL;
	size_t len = 0, passlen;
	char *user, *pass;
	struct auth_job *j, **tail;
	enum auth_result r;

	if (rq->job) {		/* back from the worker */
		j = rq->job;
		rq->job = NULL;
		if (j->ok) {
			auth_remember(j->key);
			if (auth.tokens + 1 <= AUTH_BURST)
				auth.tokens += 1;	/* only failures use them up */
		}
		r = j->ok ? AUTH_OK : AUTH_FAILED;
		job_free(j);
		return r;
	}
	if (MHD_lookup_connection_value_n(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION,
					  strlen(MHD_HTTP_HEADER_AUTHORIZATION), &value, &len) != MHD_YES ||
	    http_basic_credentials(value, len, &user, &pass, &passlen) < 0)
		return AUTH_FAILED;
	if (memchr(pass, '\0', passlen)) {
		free(user);
		free(pass);
		return AUTH_FAILED;
	}
	for (size_t i = 0; i < http.web.nusers; i++)
		if (!strcmp(http.web.users[i].name, user))
			hash = http.web.users[i].hash;
	j = xcalloc(1, sizeof(*j));
	if (hash) {
		auth_key(j->key, user, hash, pass, passlen);
		if (auth_cached(j->key)) {
			free(user);
			free(pass);
			free(j);
			return AUTH_OK;
		}
	}
	if (!auth_token()) {
		free(user);
		free(pass);
		free(j);
		return AUTH_LIMITED;
	}
	j->conn = conn;
	j->srv = conn_of(conn) ? conn_of(conn)->srv : NULL;
	j->user = user;
	j->pass = pass;
	j->hash = xstrdup(hash ? hash : http.web.users[0].hash);
	j->known = hash != NULL;
	if (!auth.started) {
		int e = pthread_create(&auth.thread, NULL, auth_worker, NULL);

		if (e) {
			log_error("http: starting the auth thread: %s", strerror(e));
			job_free(j);
			return AUTH_FAILED;
		}
		auth.started = true;
	}
	rq->job = j;
	MHD_suspend_connection(conn);
	pthread_mutex_lock(&auth.lock);
	for (tail = &auth.queue; *tail; tail = &(*tail)->next)
		;
	*tail = j;
	pthread_cond_signal(&auth.work);
	pthread_mutex_unlock(&auth.lock);
	return AUTH_PENDING;
}

static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls, (void)pos, (void)buf, (void)max;
	return MHD_CONTENT_READER_END_OF_STREAM;
}

/* csp: a page's Content-Security-Policy (it is then not cached either), or NULL. */
static enum MHD_Result respond_as(struct MHD_Connection *conn, unsigned int status, const char *type,
				  const char *body, size_t len, int gzip, enum MHD_ResponseMemoryMode mode,
				  const char *csp)
{
	/* HEAD: the headers GET would have, nothing rendered (a length MHD cannot know) */
	struct MHD_Response *r = body ?
		MHD_create_response_from_buffer(len, (void *)body, mode) :
		MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, no_body, NULL, NULL);
	enum MHD_Result ret;

	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free((void *)body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (gzip)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept, Accept-Encoding");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	if (csp) {
		MHD_add_response_header(r, "Content-Security-Policy", csp);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	}
	if (draining(conn))
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned int status, const char *type,
			       const char *body, size_t len, int gzip)
{
	return respond_as(conn, status, type, body, len, gzip, MHD_RESPMEM_MUST_COPY, NULL);
}

/*
 * A scrape's body is handed to libmicrohttpd, which frees it once sent: no
 * copy of a large exposition, and no buffer kept between scrapes.
 */
static enum MHD_Result respond_taking(struct MHD_Connection *conn, const char *type, struct buf *b,
				      int gzip)
{
	char *data = b->data;
	size_t len = b->len;

	*b = (struct buf){ 0 };
	if (!data)
		return respond(conn, MHD_HTTP_OK, type, "", 0, gzip);
	return respond_as(conn, MHD_HTTP_OK, type, data, len, gzip, MHD_RESPMEM_MUST_FREE, NULL);
}

/* Renders the metrics, compressed on the way when asked: the text is never whole in memory then. */
static enum MHD_Result respond_metrics(struct MHD_Connection *conn, const char *type, bool om, bool gz)
{
	struct gz_stream *g = gz ? gz_begin(&http.body, &http.gz) : NULL;

	metrics_render(&http.body, om ? EXPO_OPENMETRICS : EXPO_TEXT);
	if (g && gz_end(g, &http.body) == 0) {
		buf_free(&http.body);
		return respond_taking(conn, type, &http.gz, 1);
	}
	if (g) {
		static const char failed[] = "compressing the metrics failed\n";

		log_warn("gzip of a scrape failed");
		buf_free(&http.body);
		buf_free(&http.gz);
		return respond(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", failed,
			       sizeof(failed) - 1, 0);
	}
	return respond_taking(conn, type, &http.body, 0);
}

/* [p, end) without leading and trailing blanks */
static void trim(const char **p, const char **end)
{
	while (*p < *end && (**p == ' ' || **p == '\t'))
		(*p)++;
	while (*end > *p && ((*end)[-1] == ' ' || (*end)[-1] == '\t'))
		(*end)--;
}

/* The q of the parameters [p, end) (";a=b;q=0.5"), in thousandths; 0 if malformed. */
static int param_q(const char *p, const char *end)
{
	while (p < end) {
		const char *next = memchr(p, ';', (size_t)(end - p)), *e;
		int q, scale = 100;

		next = next ? next : end;
		e = next;
		trim(&p, &e);
		if (e - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
			p += 2;
			if (p == e || (*p != '0' && *p != '1'))
				return 0;
			q = (*p++ - '0') * 1000;
			if (p < e && *p++ != '.')
				return 0;
			for (; p < e && scale; p++, scale /= 10) {
				if (*p < '0' || *p > '9')
					return 0;
				q += (*p - '0') * scale;
			}
			return p == e && q <= 1000 ? q : 0;
		}
		p = next + (next < end);
	}
	return 1000;
}

/*
 * The q the header gives to name, in thousandths.  Each element of the list
 * is compared with match(), which says how specific the element is for name
 * (0: not about it); the most specific wins, the highest q among equals.
 */
static int header_q(const char *header, const char *name,
		    int (*match)(const char *el, size_t len, const char *name))
{
	int best = 0, q = 0;

	while (*header) {
		const char *end = header + strcspn(header, ","), *semi, *e;
		int m;

		semi = memchr(header, ';', (size_t)(end - header));
		e = semi ? semi : end;
		trim(&header, &e);
		m = match(header, (size_t)(e - header), name);
		if (m > best || (m == best && m)) {
			int eq = param_q(e, end);

			q = m > best ? eq : (eq > q ? eq : q);
			best = m;
		}
		header = *end ? end + 1 : end;
	}
	return q;
}

/* a media range: 3 for type/subtype, 2 for type/x, 1 for x/x */
static int media_match(const char *el, size_t len, const char *name)
{
	const char *slash = strchr(name, '/');
	size_t tlen = (size_t)(slash - name);

	if (len == strlen(name) && !strncasecmp(el, name, len))
		return 3;
	if (len == tlen + 2 && !strncasecmp(el, name, tlen) && !strncmp(el + tlen, "/*", 2))
		return 2;
	return len == 3 && !strncmp(el, "*/*", 3);
}

/* OpenMetrics must be named: "*" means the text format, as Prometheus' own clients read it */
static int openmetrics_match(const char *el, size_t len, const char *name)
{
	return media_match(el, len, name) == 3 ? 3 : 0;
}

/* a content coding: 2 for the name, 1 for "*" */
static int coding_match(const char *el, size_t len, const char *name)
{
	if (len == strlen(name) && !strncasecmp(el, name, len))
		return 2;
	return len == 1 && el[0] == '*';
}

/* the old name counts only when named: "*" is gzip's */
static int xgzip_match(const char *el, size_t len, const char *name)
{
	return coding_match(el, len, name) == 2 ? 2 : 0;
}

bool http_wants_openmetrics(const char *accept)
{
	int om, text;

	if (!accept)
		return false;
	om = header_q(accept, "application/openmetrics-text", openmetrics_match);
	text = header_q(accept, "text/plain", media_match);
	return om > 0 && om >= text;
}

bool http_wants_gzip(const char *accept_encoding)
{
	int gzip, xgzip;

	if (!accept_encoding)
		return false;
	gzip = header_q(accept_encoding, "gzip", coding_match);
	xgzip = header_q(accept_encoding, "x-gzip", xgzip_match);
	return gzip > 0 || xgzip > 0;
}

static bool has_body(struct MHD_Connection *conn)
{
	const char *len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (len && strcmp(len, "0")) ||
	       MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
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
	static const char bad_request[] = "400 a GET or HEAD request has no body\n";
	static const char limited[] = "429 too many failed logins, retry later\n";
	static const char text[] = "text/plain; charset=utf-8";
	bool head = !strcmp(method, MHD_HTTP_METHOD_HEAD);

	(void)cls, (void)version, (void)upload_data, (void)upload_size;
	/* The headers are in: no longer waiting.  Queuing the response at the
	 * first call would close the connection after it (MHD 0.9.75). */
	if (!*con_cls) {
		struct conn *c = conn_of(conn);

		if (c)
			wait_unlink(c);
		*con_cls = xcalloc(1, sizeof(struct req));
		/* A request with a body is answered now, and the connection
		 * closed after: the body is never read. */
		if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
			return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text, not_allowed,
				       sizeof(not_allowed) - 1, 0);
		if (has_body(conn))
			return respond(conn, MHD_HTTP_BAD_REQUEST, text, bad_request,
				       sizeof(bad_request) - 1, 0);
		return MHD_YES;
	}
	if (http.web.nusers) {
		enum auth_result ar = auth_check(conn, *con_cls);

		if (ar == AUTH_PENDING)
			return MHD_YES;
		if (ar == AUTH_LIMITED) {
			struct MHD_Response *r = MHD_create_response_from_buffer(
				sizeof(limited) - 1, (void *)limited, MHD_RESPMEM_PERSISTENT);
			enum MHD_Result ret;

			MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, text);
			MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
			ret = MHD_queue_response(conn, MHD_HTTP_TOO_MANY_REQUESTS, r);
			MHD_destroy_response(r);
			return ret;
		}
		if (ar == AUTH_FAILED) {
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
		bool om = http_wants_openmetrics(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
									     MHD_HTTP_HEADER_ACCEPT));
		bool gz = http_wants_gzip(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								      MHD_HTTP_HEADER_ACCEPT_ENCODING));
		const char *type = om ? TYPE_OPENMETRICS : TYPE_TEXT;

		if (head)	/* not a scrape: nothing rendered, nothing counted */
			return respond(conn, MHD_HTTP_OK, type, NULL, 0, gz);
		return respond_metrics(conn, type, om, gz);
	}
	if (strcmp(url, "/") == 0) {
		char nonce[LANDING_NONCE_LEN], csp[LANDING_CSP_LEN];

		landing_nonce(nonce);
		landing_csp(csp, sizeof(csp), nonce);
		if (!head)
			landing_page(&http.body, nonce);
		return respond_as(conn, MHD_HTTP_OK, "text/html; charset=utf-8",
				  head ? NULL : http.body.data, http.body.len, 0, MHD_RESPMEM_MUST_COPY, csp);
	}
	if (strcmp(url, "/healthz") == 0)
		return respond(conn, MHD_HTTP_OK, text, "OK\n", 3, 0);
	if (strcmp(url, "/status") == 0) {
		if (!head)
			status_render(&http.body);
		return respond(conn, MHD_HTTP_OK, "application/json", head ? NULL : http.body.data,
			       http.body.len, 0);
	}
	return respond(conn, MHD_HTTP_NOT_FOUND, text, not_found, sizeof(not_found) - 1, 0);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	/* what a client did wrong, or what we report ourselves when a start fails */
	log_debug("http: %s", line);
}

/* A whole PEM file, NUL-terminated, or NULL with the reason in err. */
static char *read_pem(const char *what, const char *path, char *err, size_t errlen)
{
	struct stat st;
	char *data;
	ssize_t n;
	/* O_NONBLOCK: a FIFO must not block the loop */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
		snprintf(err, errlen, "%s %s: %s", what, path,
			 fd < 0 ? strerror(errno) : "not a regular file, or larger than 1 MB");
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	data = xmalloc((size_t)st.st_size + 1);
	n = read(fd, data, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		snprintf(err, errlen, "%s %s: short read", what, path);
		free(data);
		return NULL;
	}
	data[n] = '\0';
	return data;
}

/* 0 if the key is the certificate's, else -1 with gnutls' reason in err. */
static int tls_pair_check(const char *cert, const char *key, char *err, size_t errlen)
{
	gnutls_certificate_credentials_t cred;
	gnutls_datum_t c = { (unsigned char *)cert, (unsigned int)strlen(cert) };
	gnutls_datum_t k = { (unsigned char *)key, (unsigned int)strlen(key) };
	int rc;

	if (gnutls_certificate_allocate_credentials(&cred) < 0)
		die_oom();
	rc = gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM);
	gnutls_certificate_free_credentials(cred);
	if (rc < 0) {
		snprintf(err, errlen, "tls_server_config: %s", gnutls_strerror(rc));
		return -1;
	}
	return 0;
}

/* The certificate and key of w (both NULL without TLS); -1 with err set. */
static int tls_read(const struct web_config *w, char **cert, char **key, char *err, size_t errlen)
{
	*cert = *key = NULL;
	if (!w || !w->cert_file)
		return 0;
	*cert = read_pem("tls_server_config.cert_file", w->cert_file, err, errlen);
	*key = *cert ? read_pem("tls_server_config.key_file", w->key_file, err, errlen) : NULL;
	if (*key && tls_pair_check(*cert, *key, err, errlen) == 0)
		return 0;
	free(*cert);
	free(*key);
	*cert = *key = NULL;
	return -1;
}

int http_check_tls(const struct web_config *w, char *err, size_t errlen)
{
	char *cert, *key;

	if (tls_read(w, &cert, &key, err, errlen) < 0)
		return -1;
	free(cert);
	free(key);
	return 0;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct server *s = cls;
	struct conn *c = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

		c = xcalloc(1, sizeof(*c));
		c->srv = s;
		c->fd = ci ? ci->connect_fd : -1;
		*socket_context = c;
		s->nconns++;
		wait_append(c);
		/* At the limit, a connection waiting for a request makes room:
		 * the one kept alive longest after a response, else the one that
		 * has waited longest for its first (this one, if every other is
		 * being answered).  Idle sockets never queue a scraper behind
		 * them, and clients that finished a request cannot push out one
		 * still in its TLS handshake. */
		if (s->nconns - s->nshed > s->max_connections) {
			log_debug("http: %u connections: closing the one idle longest",
				  s->nconns - s->nshed);
			shed(s->idle.head ? s->idle.head : s->fresh.head);
		}
		return;
	}
	if (!c)
		return;
	wait_unlink(c);
	s->nconns--;
	if (c->shed)
		s->nshed--;
	free(c);
	*socket_context = NULL;
}

/* A request is done: a kept-alive connection waits for the next one. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct conn *c = conn_of(conn);
	struct req *rq = *con_cls;

	(void)cls;
	if (rq) {
		job_free(rq->job);	/* done: a queued one was cancelled first */
		free(rq);
	}
	*con_cls = NULL;
	if (c && !c->shed && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
		wait_unlink(c);
		c->served = true;
		wait_append(c);
	}
}

/* Sheds the connections whose request has not come within web.timeout. */
static void expire(struct server *s, int64_t now)
{
	int64_t limit = (int64_t)s->timeout * 1000;

	while (s->fresh.head && now - s->fresh.head->since >= limit)
		shed(s->fresh.head);
	while (s->idle.head && now - s->idle.head->since >= limit)
		shed(s->idle.head);
}

/* The server's next deadline, ms from now: MHD's own or ours (-1: none). */
static int64_t server_timeout(const struct server *s, int64_t now)
{
	MHD_UNSIGNED_LONG_LONG mhd;
	int64_t t = -1;

	if (MHD_get_timeout(s->daemon, &mhd) == MHD_YES)
		t = (int64_t)mhd;
	for (const struct conn_list *l = &s->fresh; l; l = l == &s->fresh ? &s->idle : NULL) {
		int64_t due;

		if (!l->head)
			continue;
		due = l->head->since + (int64_t)s->timeout * 1000 - now;
		if (due < 0)
			due = 0;
		if (t < 0 || due < t)
			t = due;
	}
	if (s->drain_until && (t < 0 || s->drain_until - now < t))
		t = s->drain_until > now ? s->drain_until - now : 0;
	return t;
}

static void server_free(struct server *s)
{
	free(s->cert);
	free(s->key);
	free(s->min_version);
	free(s);
}

/*
 * Starts MHD on a dup of the listen socket with the settings, taking cert
 * and key.  MHD closes the socket it is given when it stops, and also when
 * it fails to start (TLS set-up): the dup is its own, the listen socket
 * stays ours.
 */
static struct server *server_start(const struct http_settings *set, char *cert, char *key)
{
	const struct web_config *w = set->web;
	unsigned int flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	struct MHD_OptionItem tls[4] = { { MHD_OPTION_END, 0, NULL } };
	struct server *s = xcalloc(1, sizeof(*s));
	const union MHD_DaemonInfo *info;
	struct epoll_event ev = { .events = EPOLLIN };
	int fd;

	s->cert = cert;
	s->key = key;
	s->min_version = xstrdup(w && w->min_version ? w->min_version : "");
	s->max_connections = set->max_connections;
	s->timeout = set->timeout;
	if (cert) {
		flags |= MHD_USE_TLS;
		tls[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, cert };
		tls[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, key };
		tls[2] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
			!strcmp(s->min_version, "TLS13") ?
			(void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3" :
			(void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2" };
	}
	fd = fcntl(http.listen_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		log_error("starting the HTTP server: %s", strerror(errno));
		server_free(s);
		return NULL;
	}
	s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, NULL,
				     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				     MHD_OPTION_LISTEN_SOCKET, fd,
				     MHD_OPTION_CONNECTION_LIMIT, s->max_connections + SHED_SLACK,
				     MHD_OPTION_CONNECTION_TIMEOUT, s->timeout,
				     MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				     MHD_OPTION_ARRAY, tls,
				     MHD_OPTION_END);
	info = s->daemon ? MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	ev.data.ptr = s;
	if (!info || epoll_ctl(http.epfd, EPOLL_CTL_ADD, info->epoll_fd, &ev) < 0) {
		log_error("starting the HTTP server failed");
		if (s->daemon)
			MHD_stop_daemon(s->daemon);
		else if (fcntl(fd, F_GETFD) >= 0)	/* MHD failed before taking it */
			close(fd);
		server_free(s);
		return NULL;
	}
	return s;
}

static void server_stop(struct server *s)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD);

	auth_cancel(s);	/* no connection of s stays suspended */

	if (info)
		epoll_ctl(http.epfd, EPOLL_CTL_DEL, info->epoll_fd, NULL);
	MHD_stop_daemon(s->daemon);	/* closes its connections and its dup of the listen socket */
	server_free(s);
}

/* Whether the server already runs with what set and this TLS pair would give it. */
static bool server_same(const struct server *s, const struct http_settings *set,
			const char *cert, const char *key)
{
	const char *minv = set->web && set->web->min_version ? set->web->min_version : "";

	return s->max_connections == set->max_connections && s->timeout == set->timeout &&
	       !strcmp(s->min_version, minv) && !s->cert == !cert &&
	       (!cert || (!strcmp(s->cert, cert) && !strcmp(s->key, key)));
}

/* The remembered passwords stay: each is tied to its user's hash, which a reload may change. */
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
	char *cert, *key, err[512];

	http.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (http.epfd < 0) {
		log_error("epoll_create1: %s", strerror(errno));
		return -1;
	}
	auth.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (auth.wake < 0 || epoll_ctl(http.epfd, EPOLL_CTL_ADD, auth.wake,
				       &(struct epoll_event){ .events = EPOLLIN }) < 0) {
		log_error("eventfd: %s", strerror(errno));
		return -1;
	}
	http.listen_fd = listen_on(s->listen_address);
	if (http.listen_fd < 0)
		return -1;
	if (tls_read(s->web, &cert, &key, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	http.cur = server_start(s, cert, key);
	if (!http.cur)
		return -1;
	keep_settings(s);
	log_info("listening on %s%s, metrics at %s", s->listen_address,
		 cert ? " (TLS)" : "", s->telemetry_path);
	return 0;
}

int http_reload(const struct http_settings *set)
{
	struct server *s;
	char *cert, *key, err[512];
	int fd;

	if (tls_read(set->web, &cert, &key, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	if (server_same(http.cur, set, cert, key)) {
		free(cert);
		free(key);
		keep_settings(set);
		return 0;
	}
	/* the new server accepts on the same socket before the old one stops accepting */
	s = server_start(set, cert, key);
	if (!s)
		return -1;
	if (http.old) {
		log_warn("http: a reload came before the previous one's requests were done: "
			 "%u connections closed", http.old->nconns);
		server_stop(http.old);
	}
	fd = MHD_quiesce_daemon(http.cur->daemon);
	if (fd >= 0)
		close(fd);
	/* waiting connections go at their deadline, served ones once answered */
	http.cur->drain_until = now_ms() + 2 * (int64_t)http.cur->timeout * 1000;
	http.old = http.cur;
	http.cur = s;
	keep_settings(set);
	log_info("HTTP server restarted with the new web settings");
	return 0;
}

int http_poll_fd(void)
{
	return http.epfd;
}

int http_timeout_ms(void)
{
	int64_t now = now_ms(), t = server_timeout(http.cur, now);

	if (http.old) {
		int64_t o = server_timeout(http.old, now);

		if (t < 0 || (o >= 0 && o < t))
			t = o;
	}
	return t < 0 ? -1 : t > 60000 ? 60000 : (int)t;
}

void http_run(void)
{
	int64_t now = now_ms();
	eventfd_t woken;

	eventfd_read(auth.wake, &woken);	/* resumed connections are MHD_run's now */
	expire(http.cur, now);
	MHD_run(http.cur->daemon);
	if (http.old) {
		expire(http.old, now);
		MHD_run(http.old->daemon);
		if (http.old->nconns == 0 || now >= http.old->drain_until) {
			if (http.old->nconns)
				log_warn("http: %u connections still open after the reload: closed",
					 http.old->nconns);
			server_stop(http.old);
			http.old = NULL;
		}
	}
}

void http_fini(void)
{
	if (auth.started) {
		pthread_mutex_lock(&auth.lock);
		auth.quit = true;
		pthread_cond_signal(&auth.work);
		pthread_mutex_unlock(&auth.lock);
		pthread_join(auth.thread, NULL);
		auth.started = auth.quit = false;
	}
	if (http.old)
		server_stop(http.old);
	if (http.cur)
		server_stop(http.cur);
	http.cur = http.old = NULL;
	if (http.listen_fd >= 0)
		close(http.listen_fd);
	http.listen_fd = -1;
	if (http.epfd >= 0)
		close(http.epfd);
	http.epfd = -1;
	if (auth.wake >= 0)
		close(auth.wake);
	auth.wake = -1;
	free(http.telemetry_path);
	http.telemetry_path = NULL;
	web_config_free(&http.web);
	buf_free(&http.body);
	buf_free(&http.gz);
}
