/* config.c: YAML configuration (libyaml): a fixed schema, every error with file:line:column. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config.h"
#include "log.h"

enum key_type { KEY_STRING, KEY_BOOL, KEY_DURATION };

struct key_spec {
	const char *section;
	const char *key;
	enum key_type type;
	size_t offset;
};

#define KEY(s, k, t, f) { s, k, t, offsetof(struct config, f) }
static const struct key_spec keys[] = {
	KEY("web", "listen_address", KEY_STRING, listen_address),
	KEY("web", "telemetry_path", KEY_STRING, telemetry_path),
	KEY("log", "level", KEY_STRING, log_level),
	KEY("probes", "fpu", KEY_BOOL, probe_fpu),
	KEY("probes", "kvm", KEY_BOOL, probe_kvm),
	KEY("probes", "signals", KEY_BOOL, probe_signals),
	KEY("probes", "sigreturn_compat", KEY_BOOL, sigreturn_compat),
	KEY("cgroups", "root", KEY_STRING, cgroup_root),
	KEY("cgroups", "grace_period", KEY_DURATION, grace_period),
};
#undef KEY

void config_defaults(struct config *c)
{
	*c = (struct config){
		.listen_address = xstrdup(":9659"),
		.telemetry_path = xstrdup("/metrics"),
		.log_level = xstrdup("info"),
		.probe_fpu = true,
		.probe_kvm = true,
		.probe_signals = true,
		.sigreturn_compat = false,
		.cgroup_root = xstrdup(""),
		.grace_period = 300,
	};
}

void config_free(struct config *c)
{
	free(c->listen_address);
	free(c->telemetry_path);
	free(c->log_level);
	free(c->cgroup_root);
	memset(c, 0, sizeof(*c));
}

long config_parse_duration(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || v < 0)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		return v;
	if (strcmp(end, "m") == 0 && v <= 1000000)
		return v * 60;
	if (strcmp(end, "h") == 0 && v <= 100000)
		return v * 3600;
	return -1;
}

struct parser {
	yaml_parser_t yaml;
	const char *path;
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

static int set_value(struct parser *p, struct config *c, const struct key_spec *k, yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	void *field = (char *)c + k->offset;

	if (ev->type != YAML_SCALAR_EVENT)
		return fail(p, &ev->start_mark, "%s.%s: expected %s, found %s", k->section, k->key,
			    k->type == KEY_BOOL ? "true or false" : "a string", event_name(ev->type));
	switch (k->type) {
	case KEY_STRING:
		if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		    (!strcmp(v, "true") || !strcmp(v, "false") || !strcmp(v, "null") || !strcmp(v, "~")))
			return fail(p, &ev->start_mark, "%s.%s: expected a string, found %s",
				    k->section, k->key, v);
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		return 0;
	case KEY_BOOL:
		if (strcmp(v, "true") && strcmp(v, "false"))
			return fail(p, &ev->start_mark, "%s.%s: expected true or false, found \"%s\"",
				    k->section, k->key, v);
		*(bool *)field = strcmp(v, "true") == 0;
		return 0;
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

static int parse_section(struct parser *p, struct config *c, const char *section)
{
	yaml_event_t key, val;

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
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (!strcmp(keys[i].section, section) &&
			    !strcmp(keys[i].key, (const char *)key.data.scalar.value))
				spec = &keys[i];
		if (!spec) {
			err = fail(p, &key.start_mark, "unknown key \"%s\" in section \"%s\"",
				   (const char *)key.data.scalar.value, section);
			yaml_event_delete(&key);
			return err;
		}
		yaml_event_delete(&key);
		if (next(p, &val))
			return -1;
		err = set_value(p, c, spec, &val);
		yaml_event_delete(&val);
		if (err)
			return err;
	}
}

static int known_section(const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(keys[i].section, name))
			return 1;
	return 0;
}

static int parse_document(struct parser *p, struct config *c)
{
	yaml_event_t ev;
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
		char *section;

		if (next(p, &ev))
			return -1;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type != YAML_SCALAR_EVENT || !known_section((const char *)ev.data.scalar.value)) {
			err = ev.type == YAML_SCALAR_EVENT ?
			      fail(p, &ev.start_mark, "unknown section \"%s\"", ev.data.scalar.value) :
			      fail(p, &ev.start_mark, "expected a section name, found %s", event_name(ev.type));
			yaml_event_delete(&ev);
			return err;
		}
		section = xstrdup((const char *)ev.data.scalar.value);
		yaml_event_delete(&ev);
		if (next(p, &ev)) {
			free(section);
			return -1;
		}
		if (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.length == 0 &&
		    ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
			err = 0;	/* "section:" with nothing under it */
		} else if (ev.type != YAML_MAPPING_START_EVENT) {
			err = fail(p, &ev.start_mark, "%s: expected a mapping, found %s", section,
				   event_name(ev.type));
		} else {
			err = parse_section(p, c, section);
		}
		yaml_event_delete(&ev);
		free(section);
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

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	struct parser p = { .path = path, .err = err, .errlen = errlen };
	FILE *f = fopen(path, "re");
	int ret;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	yaml_parser_initialize(&p.yaml);
	yaml_parser_set_input_file(&p.yaml, f);
	ret = parse_document(&p, c);
	yaml_parser_delete(&p.yaml);
	if (!ret && ferror(f))
		ret = fail(&p, NULL, "read error: %s", strerror(errno));
	fclose(f);
	return ret;
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
	return 0;
}
