/* config.c: YAML configuration files (libyaml): fixed schemas, every error with file:line:column. */
#include <crypt.h>
#include <errno.h>
#include <libgen.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml.h>

#include "config.h"
#include "log.h"

enum key_type { KEY_STRING, KEY_BOOL, KEY_DURATION, KEY_COUNT, KEY_FILE, KEY_LIST };

/* the longest value a string key takes (a path, a regex, a name) */
#define VALUE_MAX 4096
/* the longest duration: a year */
#define DURATION_MAX (365L * 24 * 3600)
/* what compiling one cgroup regex may cost, checked in a child process */
#define REGEX_CPU_S 2
#define REGEX_MEM (256L << 20)

struct key_spec {
	const char *section;
	const char *key;
	enum key_type type;
	size_t offset;
};

#define KEY(s, k, t, f) { s, k, t, offsetof(struct config, f) }
static const struct key_spec config_keys[] = {
	KEY("web", "listen_address", KEY_STRING, listen_address),
	KEY("web", "telemetry_path", KEY_STRING, telemetry_path),
	KEY("web", "config_file", KEY_STRING, web_config_file),
	KEY("web", "max_connections", KEY_COUNT, max_connections),
	KEY("web", "timeout", KEY_DURATION, timeout),
	KEY("log", "level", KEY_STRING, log_level),
	KEY("probes", "fpu", KEY_BOOL, probe_fpu),
	KEY("probes", "kvm", KEY_BOOL, probe_kvm),
	KEY("probes", "signals", KEY_BOOL, probe_signals),
	KEY("probes", "sigreturn_compat", KEY_BOOL, sigreturn_compat),
	KEY("bpf", "stats_enabled", KEY_BOOL, bpf_stats),
	KEY("bpf", "max_cgroups", KEY_COUNT, bpf_max_cgroups),
	KEY("bpf", "max_xstates", KEY_COUNT, bpf_max_xstates),
	KEY("bpf", "max_vcpu_threads", KEY_COUNT, bpf_max_vcpu_threads),
	KEY("bpf", "max_guest_xstates", KEY_COUNT, bpf_max_guest_xstates),
	KEY("bpf", "max_removed_cgroups", KEY_COUNT, bpf_max_removed_cgroups),
	KEY("cgroups", "root", KEY_STRING, cgroup_root),
	KEY("cgroups", "grace_period", KEY_DURATION, grace_period),
	KEY("cgroups", "depth", KEY_COUNT, cgroup_depth),
	KEY("cgroups", "include", KEY_LIST, cgroup_include),
	KEY("cgroups", "exclude", KEY_LIST, cgroup_exclude),
	KEY("series", "max_per_family", KEY_COUNT, max_series),
	KEY("service", "user", KEY_STRING, user),
	{ NULL, NULL, KEY_STRING, 0 },
};
#undef KEY

#define WKEY(k, t, f) { "tls_server_config", k, t, offsetof(struct web_config, f) }
static const struct key_spec tls_keys[] = {
	WKEY("cert_file", KEY_FILE, cert_file),
	WKEY("key_file", KEY_FILE, key_file),
	WKEY("min_version", KEY_STRING, min_version),
	{ NULL, NULL, KEY_STRING, 0 },
};
#undef WKEY

void config_defaults(struct config *c)
{
	*c = (struct config){
		.listen_address = xstrdup(":9659"),
		.telemetry_path = xstrdup("/metrics"),
		.web_config_file = xstrdup(""),
		.max_connections = 64,
		.timeout = 10,
		.log_level = xstrdup("info"),
		.probe_fpu = true,
		.probe_kvm = true,
		.probe_signals = true,
		.sigreturn_compat = false,
		.bpf_stats = false,
		.cgroup_root = xstrdup(""),
		.grace_period = 300,
		.max_series = 10000,
		.user = xstrdup(""),
	};
}

static void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void config_free(struct config *c)
{
	strlist_free(&c->cgroup_include);
	strlist_free(&c->cgroup_exclude);
	free(c->listen_address);
	free(c->telemetry_path);
	free(c->web_config_file);
	free(c->log_level);
	free(c->cgroup_root);
	free(c->user);
	memset(c, 0, sizeof(*c));
}

void web_config_free(struct web_config *w)
{
	free(w->cert_file);
	free(w->key_file);
	free(w->min_version);
	for (size_t i = 0; i < w->nusers; i++) {
		free(w->users[i].name);
		free(w->users[i].hash);
	}
	free(w->users);
	memset(w, 0, sizeof(*w));
}

long config_parse_duration(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || v < 0)
		return -1;
	if (strcmp(end, "m") == 0 && v <= DURATION_MAX / 60)
		v *= 60;
	else if (strcmp(end, "h") == 0 && v <= DURATION_MAX / 3600)
		v *= 3600;
	else if (*end && strcmp(end, "s"))
		return -1;
	return v <= DURATION_MAX ? v : -1;
}

struct parser {
	yaml_parser_t yaml;
	const char *path;
	char dir[PATH_MAX];	/* relative file names are relative to the file's directory */
	char *err;
	size_t errlen;
};

static int fail(struct parser *p, const yaml_mark_t *m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct parser *p, const yaml_mark_t *m, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (m)
		snprintf(p->err, p->errlen, "%s:%zu:%zu: %s", p->path, m->line + 1, m->column + 1, what);
	else
		snprintf(p->err, p->errlen, "%s: %s", p->path, what);
	return -1;
}

static int next(struct parser *p, yaml_event_t *ev)
{
	if (yaml_parser_parse(&p->yaml, ev))
		return 0;
	if (p->yaml.context)
		return fail(p, &p->yaml.problem_mark, "%s %s", p->yaml.problem, p->yaml.context);
	return fail(p, &p->yaml.problem_mark, "%s", p->yaml.problem ? p->yaml.problem : "YAML error");
}

static const char *event_name(yaml_event_type_t t)
{
	switch (t) {
	case YAML_MAPPING_START_EVENT: return "a mapping";
	case YAML_SEQUENCE_START_EVENT: return "a list";
	case YAML_SCALAR_EVENT: return "a scalar";
	case YAML_ALIAS_EVENT: return "an alias";
	default: return "nothing";
	}
}

/* A plain true/false/null where a string belongs is almost always a mistake. */
static int is_plain_keyword(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;

	return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (!strcmp(v, "true") || !strcmp(v, "false") || !strcmp(v, "null") || !strcmp(v, "~"));
}

/* A scalar holds no NUL (libyaml keeps "\0" escapes) and is not huge. */
static int scalar_check(struct parser *p, const yaml_event_t *ev, const char *section,
			const char *key)
{
	if (strlen((const char *)ev->data.scalar.value) != ev->data.scalar.length)
		return fail(p, &ev->start_mark, "%s%s%s: a NUL byte in the value", section,
			    key ? "." : "", key ? key : "");
	if (ev->data.scalar.length > VALUE_MAX)
		return fail(p, &ev->start_mark, "%s%s%s: longer than %d bytes", section,
			    key ? "." : "", key ? key : "", VALUE_MAX);
	return 0;
}

/* A list of strings: its SEQUENCE_START given. */
static int set_list(struct parser *p, struct strlist *l, const struct key_spec *k, yaml_event_t *open)
{
	yaml_event_t ev;

	if (open->type != YAML_SEQUENCE_START_EVENT)
		return fail(p, &open->start_mark, "%s.%s: expected a list of strings, found %s",
			    k->section, k->key, event_name(open->type));
	strlist_free(l);
	for (;;) {
		if (next(p, &ev))
			return -1;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		if (ev.type != YAML_SCALAR_EVENT) {
			int err = fail(p, &ev.start_mark, "%s.%s: expected a string, found %s",
				       k->section, k->key, event_name(ev.type));

			yaml_event_delete(&ev);
			return err;
		}
		if (scalar_check(p, &ev, k->section, k->key)) {
			yaml_event_delete(&ev);
			return -1;
		}
		l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
		l->v[l->n++] = xstrdup((const char *)ev.data.scalar.value);
		yaml_event_delete(&ev);
	}
}

static int set_value(struct parser *p, void *base, const struct key_spec *k, yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	void *field = (char *)base + k->offset;

	if (k->type == KEY_LIST)
		return set_list(p, field, k, ev);
	if (ev->type != YAML_SCALAR_EVENT)
		return fail(p, &ev->start_mark, "%s.%s: expected %s, found %s", k->section, k->key,
			    k->type == KEY_BOOL ? "true or false" : "a scalar", event_name(ev->type));
	if (scalar_check(p, ev, k->section, k->key))
		return -1;
	switch (k->type) {
	case KEY_STRING:
	case KEY_FILE:
		if (is_plain_keyword(ev))
			return fail(p, &ev->start_mark, "%s.%s: expected a string, found %s",
				    k->section, k->key, v);
		free(*(char **)field);
		if (k->type == KEY_FILE && v[0] && v[0] != '/')
			*(char **)field = xasprintf("%s/%s", p->dir, v);
		else
			*(char **)field = xstrdup(v);
		if (k->type == KEY_FILE && access(*(char **)field, R_OK) < 0)
			return fail(p, &ev->start_mark, "%s.%s: %s: %s", k->section, k->key,
				    *(char **)field, strerror(errno));
		return 0;
	case KEY_BOOL:
		if (strcmp(v, "true") && strcmp(v, "false"))
			return fail(p, &ev->start_mark, "%s.%s: expected true or false, found \"%s\"",
				    k->section, k->key, v);
		*(bool *)field = strcmp(v, "true") == 0;
		return 0;
	case KEY_COUNT: {
		char *end;
		long n;

		errno = 0;
		n = strtol(v, &end, 10);
		if (errno || end == v || *end || n < 0 || n > 100000)
			return fail(p, &ev->start_mark, "%s.%s: expected a number from 0 to 100000, found \"%s\"",
				    k->section, k->key, v);
		*(long *)field = n;
		return 0;
	}
	case KEY_LIST:
		return 0;	/* handled above */
	case KEY_DURATION: {
		long d = config_parse_duration(v);

		if (d < 0)
			return fail(p, &ev->start_mark,
				    "%s.%s: expected a duration such as 30s, 5m or 1h, found \"%s\"",
				    k->section, k->key, v);
		*(long *)field = d;
		return 0;
	}
	}
	return 0;
}

/* Reads the keys of one section's mapping (its MAPPING_START already consumed) into base. */
static int parse_section(struct parser *p, void *base, const struct key_spec *keys, const char *section)
{
	yaml_event_t key, val;
	uint64_t seen = 0;

	for (;;) {
		const struct key_spec *spec = NULL;
		int err;

		if (next(p, &key))
			return -1;
		if (key.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&key);
			return 0;
		}
		if (key.type != YAML_SCALAR_EVENT) {
			err = fail(p, &key.start_mark, "%s: expected a key, found %s", section,
				   event_name(key.type));
			yaml_event_delete(&key);
			return err;
		}
		for (const struct key_spec *k = keys; k->key; k++)
			if (!strcmp(k->section, section) && !strcmp(k->key, (const char *)key.data.scalar.value))
				spec = k;
		if (!spec || (seen & 1ull << (spec - keys))) {
			err = fail(p, &key.start_mark, "%s key \"%s\" in section \"%s\"",
				   spec ? "duplicate" : "unknown", (const char *)key.data.scalar.value,
				   section);
			yaml_event_delete(&key);
			return err;
		}
		seen |= 1ull << (spec - keys);
		yaml_event_delete(&key);
		if (next(p, &val))
			return -1;
		err = set_value(p, base, spec, &val);
		yaml_event_delete(&val);
		if (err)
			return err;
	}
}

/* A "section:" with nothing under it is an empty mapping. */
static int section_start(struct parser *p, yaml_event_t *ev, const char *section, int *empty)
{
	*empty = ev->type == YAML_SCALAR_EVENT && ev->data.scalar.length == 0 &&
		 ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	if (*empty || ev->type == YAML_MAPPING_START_EVENT)
		return 0;
	return fail(p, &ev->start_mark, "%s: expected a mapping, found %s", section, event_name(ev->type));
}

/* A section handler reads the section's body, its opening event given. */
typedef int (*section_fn)(struct parser *p, void *base, const char *section, yaml_event_t *open);

struct section {
	const char *name;
	section_fn parse;
};

static int keyed_section(struct parser *p, void *base, const struct key_spec *keys,
			 const char *section, yaml_event_t *open)
{
	int empty;

	if (section_start(p, open, section, &empty))
		return -1;
	return empty ? 0 : parse_section(p, base, keys, section);
}

static int config_section(struct parser *p, void *base, const char *section, yaml_event_t *open)
{
	return keyed_section(p, base, config_keys, section, open);
}

static int tls_section(struct parser *p, void *base, const char *section, yaml_event_t *open)
{
	struct web_config *w = base;

	if (keyed_section(p, base, tls_keys, section, open))
		return -1;
	if (!w->cert_file || !w->key_file)
		return fail(p, &open->start_mark, "tls_server_config: cert_file and key_file are both required");
	if (w->min_version && strcmp(w->min_version, "TLS12") && strcmp(w->min_version, "TLS13"))
		return fail(p, &open->start_mark, "tls_server_config.min_version: expected TLS12 or TLS13, found \"%s\"",
			    w->min_version);
	return 0;
}

static int valid_bcrypt(const char *hash)
{
	return strlen(hash) == 60 && hash[0] == '$' && hash[1] == '2' && strchr("aby", hash[2]) &&
	       hash[3] == '$' && crypt_checksalt(hash) == CRYPT_SALT_OK;
}

static long user_index(const struct web_config *w, const char *name)
{
	for (size_t i = 0; i < w->nusers; i++)
		if (!strcmp(w->users[i].name, name))
			return (long)i;
	return -1;
}

static int users_section(struct parser *p, void *base, const char *section, yaml_event_t *open)
{
	struct web_config *w = base;
	yaml_event_t key, val;
	int empty, err = 0;

	if (section_start(p, open, section, &empty) || empty)
		return empty ? 0 : -1;
	for (;;) {
		if (next(p, &key))
			return -1;
		if (key.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&key);
			return 0;
		}
		if (key.type != YAML_SCALAR_EVENT || next(p, &val)) {
			err = key.type != YAML_SCALAR_EVENT ?
			      fail(p, &key.start_mark, "basic_auth_users: expected a user name, found %s",
				   event_name(key.type)) : -1;
			yaml_event_delete(&key);
			return err;
		}
		if (scalar_check(p, &key, "basic_auth_users", NULL)) {
			err = -1;
		} else if (user_index(w, (const char *)key.data.scalar.value) >= 0) {
			err = fail(p, &key.start_mark, "basic_auth_users: duplicate user \"%s\"",
				   (const char *)key.data.scalar.value);
		} else if (val.type != YAML_SCALAR_EVENT ||
			   !valid_bcrypt((const char *)val.data.scalar.value)) {
			err = fail(p, &val.start_mark, "basic_auth_users.%s: expected a bcrypt hash ($2y$...)",
				   (const char *)key.data.scalar.value);
		} else {
			w->users = xrealloc(w->users, (w->nusers + 1) * sizeof(*w->users));
			w->users[w->nusers++] = (struct web_user){
				xstrdup((const char *)key.data.scalar.value),
				xstrdup((const char *)val.data.scalar.value),
			};
		}
		yaml_event_delete(&key);
		yaml_event_delete(&val);
		if (err)
			return err;
	}
}

/* One YAML document: a mapping of the given sections. */
static int parse_document(struct parser *p, void *base, const struct section *sections)
{
	yaml_event_t ev;
	uint64_t seen = 0;
	int err = 0;

	/* stream start, document start (none in an empty file), top-level mapping */
	if (next(p, &ev))
		return -1;
	yaml_event_delete(&ev);
	if (next(p, &ev))
		return -1;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		return 0;
	}
	yaml_event_delete(&ev);
	if (next(p, &ev))
		return -1;
	if (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.length == 0) {
		yaml_event_delete(&ev);	/* a document with only comments */
		return 0;
	}
	if (ev.type != YAML_MAPPING_START_EVENT) {
		err = fail(p, &ev.start_mark, "expected a mapping of sections, found %s",
			   event_name(ev.type));
		yaml_event_delete(&ev);
		return err;
	}
	yaml_event_delete(&ev);
	for (;;) {
		const struct section *s = NULL;
		char *name;

		if (next(p, &ev))
			return -1;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type == YAML_SCALAR_EVENT)
			for (const struct section *t = sections; t->name; t++)
				if (!strcmp(t->name, (const char *)ev.data.scalar.value))
					s = t;
		if (!s || (seen & 1ull << (s - sections))) {
			err = ev.type == YAML_SCALAR_EVENT ?
			      fail(p, &ev.start_mark, "%s section \"%s\"", s ? "duplicate" : "unknown",
				   ev.data.scalar.value) :
			      fail(p, &ev.start_mark, "expected a section name, found %s", event_name(ev.type));
			yaml_event_delete(&ev);
			return err;
		}
		seen |= 1ull << (s - sections);
		name = xstrdup(s->name);
		yaml_event_delete(&ev);
		if (next(p, &ev)) {
			free(name);
			return -1;
		}
		err = s->parse(p, base, name, &ev);
		yaml_event_delete(&ev);
		free(name);
		if (err)
			return err;
	}
	/* exactly one document */
	if (next(p, &ev))
		return -1;
	if (ev.type != YAML_DOCUMENT_END_EVENT) {
		err = fail(p, &ev.start_mark, "unexpected content after the configuration");
		yaml_event_delete(&ev);
		return err;
	}
	yaml_event_delete(&ev);
	if (next(p, &ev))
		return -1;
	if (ev.type != YAML_STREAM_END_EVENT)
		err = fail(p, &ev.start_mark, "only one YAML document is allowed");
	yaml_event_delete(&ev);
	return err;
}

int config_open_regular(const char *path, FILE **out, char *err, size_t errlen)
{
	/* O_NONBLOCK: opening a FIFO must not wait for a writer */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	*out = fdopen(fd, "r");
	if (!*out)
		die_oom();
	return 0;
}

static int load_file(const char *path, void *base, const struct section *sections, char *err,
		     size_t errlen)
{
	struct parser p = { .path = path, .err = err, .errlen = errlen };
	char copy[PATH_MAX];
	FILE *f;
	int ret;

	if (config_open_regular(path, &f, err, errlen) < 0)
		return -1;
	snprintf(copy, sizeof(copy), "%s", path);
	snprintf(p.dir, sizeof(p.dir), "%s", dirname(copy));
	yaml_parser_initialize(&p.yaml);
	yaml_parser_set_input_file(&p.yaml, f);
	ret = parse_document(&p, base, sections);
	yaml_parser_delete(&p.yaml);
	if (!ret && ferror(f))
		ret = fail(&p, NULL, "read error: %s", strerror(errno));
	fclose(f);
	return ret;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	static const struct section sections[] = {
		{ "web", config_section }, { "log", config_section },
		{ "probes", config_section }, { "bpf", config_section },
		{ "cgroups", config_section }, { "series", config_section },
		{ "service", config_section },
		{ NULL, NULL },
	};

	return load_file(path, c, sections, err, errlen);
}

int web_config_load(struct web_config *w, const char *path, char *err, size_t errlen)
{
	static const struct section sections[] = {
		{ "tls_server_config", tls_section },
		{ "basic_auth_users", users_section },
		{ NULL, NULL },
	};

	memset(w, 0, sizeof(*w));
	return load_file(path, w, sections, err, errlen);
}

/*
 * Compiles each regex in a child with bounded CPU time and memory: some
 * (nested counted repetitions) take glibc seconds and gigabytes.  Syntax
 * errors are left to the compile that keeps the result.
 */
static int regexes_check(const struct strlist *l, const char *what, char *err, size_t errlen)
{
	for (size_t i = 0; i < l->n; i++) {
		int status;
		pid_t pid = fork();

		if (pid < 0) {
			snprintf(err, errlen, "%s: fork: %s", what, strerror(errno));
			return -1;
		}
		if (pid == 0) {
			struct rlimit cpu = { REGEX_CPU_S, REGEX_CPU_S }, mem = { REGEX_MEM, REGEX_MEM };
			regex_t re;

			setrlimit(RLIMIT_CPU, &cpu);
#ifndef __SANITIZE_ADDRESS__	/* ASan's shadow memory is far above any such limit */
			setrlimit(RLIMIT_AS, &mem);
#else
			(void)mem;
#endif
			alarm(2 * REGEX_CPU_S);
			if (regcomp(&re, l->v[i], REG_EXTENDED | REG_NOSUB) == REG_ESPACE)
				_exit(1);
			_exit(0);
		}
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			snprintf(err, errlen, "%s[%zu] \"%.64s%s\": too costly to compile "
				 "(over %ds of CPU or %ld MB)", what, i, l->v[i],
				 strlen(l->v[i]) > 64 ? "..." : "", REGEX_CPU_S, REGEX_MEM >> 20);
			return -1;
		}
	}
	return 0;
}

int config_validate(const struct config *c, char *err, size_t errlen)
{
	enum log_level level;

	if (c->telemetry_path[0] != '/' || !strcmp(c->telemetry_path, "/")) {
		snprintf(err, errlen, "telemetry path \"%s\" must start with / and not be /",
			 c->telemetry_path);
		return -1;
	}
	if (log_level_parse(c->log_level, &level) < 0) {
		snprintf(err, errlen, "log level \"%s\" is not one of error, warn, info, debug",
			 c->log_level);
		return -1;
	}
	if (c->grace_period <= 0) {
		snprintf(err, errlen, "cgroups.grace_period must be positive");
		return -1;
	}
	if (c->max_connections < 1) {
		snprintf(err, errlen, "web.max_connections must be at least 1");
		return -1;
	}
	if (c->timeout <= 0 || c->timeout > 3600) {
		snprintf(err, errlen, "web.timeout must be from 1s to 1h");
		return -1;
	}
	{
		const struct { const char *key; long v; } sizes[] = {
			{ "max_cgroups", c->bpf_max_cgroups }, { "max_xstates", c->bpf_max_xstates },
			{ "max_vcpu_threads", c->bpf_max_vcpu_threads },
			{ "max_guest_xstates", c->bpf_max_guest_xstates },
			{ "max_removed_cgroups", c->bpf_max_removed_cgroups },
		};

		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			if (sizes[i].v != 0 && sizes[i].v < 64) {
				snprintf(err, errlen, "bpf.%s must be 0 (sized by CPU count) or at least 64, "
					 "found %ld", sizes[i].key, sizes[i].v);
				return -1;
			}
	}
	if (strlen(c->telemetry_path) > 1024) {
		snprintf(err, errlen, "telemetry path longer than 1024 bytes");
		return -1;
	}
	if (c->user[0] && !getpwnam(c->user)) {
		snprintf(err, errlen, "service.user \"%s\": no such user", c->user);
		return -1;
	}
	return regexes_check(&c->cgroup_include, "cgroups.include", err, errlen) < 0 ||
	       regexes_check(&c->cgroup_exclude, "cgroups.exclude", err, errlen) < 0 ? -1 : 0;
}
