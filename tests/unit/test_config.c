/* test_config.c: unit tests of the YAML configuration: defaults, values, and exact errors for bad files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

static char path[] = "/tmp/fpu_config_test.XXXXXX";

static int load(const char *yaml, struct config *c, char *err, size_t errlen)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(yaml, f);
	fclose(f);
	config_defaults(c);
	return config_load(c, path, err, errlen);
}

static void test_defaults_and_empty_file(void **state)
{
	struct config c;
	char err[512] = "";

	(void)state;
	assert_int_equal(load("", &c, err, sizeof(err)), 0);
	assert_string_equal(c.listen_address, ":9659");
	assert_string_equal(c.telemetry_path, "/metrics");
	assert_true(c.probe_fpu && c.probe_kvm && c.probe_signals);
	assert_false(c.sigreturn_compat);
	assert_int_equal(c.grace_period, 300);
	assert_int_equal(c.max_connections, 64);
	assert_int_equal(c.timeout, 10);
	assert_false(c.bpf_stats);
	assert_string_equal(c.user, "");
	config_free(&c);
	assert_int_equal(load("# only a comment\n", &c, err, sizeof(err)), 0);
	config_free(&c);
}

static void test_values(void **state)
{
	struct config c;
	char err[512] = "";

	(void)state;
	assert_int_equal(load("web:\n  listen_address: \"127.0.0.1:9100\"\n  telemetry_path: /m\n"
			      "probes:\n  kvm: false\n  sigreturn_compat: true\n"
			      "cgroups:\n  grace_period: 2m\n  depth: 2\n  include: [\"^/system\", \"^/machine\"]\n"
			      "series:\n  max_per_family: 50\nlog:\n  level: debug\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c.cgroup_depth, 2);
	assert_int_equal(c.cgroup_include.n, 2);
	assert_string_equal(c.cgroup_include.v[1], "^/machine");
	assert_int_equal(c.max_series, 50);
	assert_string_equal(c.listen_address, "127.0.0.1:9100");
	assert_string_equal(c.telemetry_path, "/m");
	assert_false(c.probe_kvm);
	assert_true(c.sigreturn_compat);
	assert_int_equal(c.grace_period, 120);
	assert_string_equal(c.log_level, "debug");
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
	config_free(&c);
}

struct bad_case {
	const char *yaml;
	const char *error;	/* after "PATH:" */
};

static int load_web(const char *yaml, struct web_config *w, char *err, size_t errlen);

/* Each case must fail to load (as a web config if web) with exactly its error. */
static void expect_errors(const struct bad_case *cases, size_t n, int web)
{
	char err[512], want[600];

	for (size_t i = 0; i < n; i++) {
		struct web_config w;
		struct config c;

		err[0] = '\0';
		if (web) {
			assert_int_equal(load_web(cases[i].yaml, &w, err, sizeof(err)), -1);
			web_config_free(&w);
		} else {
			assert_int_equal(load(cases[i].yaml, &c, err, sizeof(err)), -1);
			config_free(&c);
		}
		snprintf(want, sizeof(want), "%s:%s", path, cases[i].error);
		assert_string_equal(err, want);
	}
}

static void test_bad_files(void **state)
{
	static const struct bad_case cases[] = {
		{ "web:\n  listen_adress: x\n", "2:3: unknown key \"listen_adress\" in section \"web\"" },
		{ "webb:\n  listen_address: x\n", "1:1: unknown section \"webb\"" },
		{ "probes:\n  kvm: yes please\n", "2:8: probes.kvm: expected true or false, found \"yes please\"" },
		{ "probes:\n  kvm: [1]\n", "2:8: probes.kvm: expected true or false, found a list" },
		{ "web:\n  telemetry_path: true\n", "2:19: web.telemetry_path: expected a string, found true" },
		{ "web:\n\tlisten_address: x\n", "2:1: found character that cannot start any token while scanning for the next token" },
		{ "cgroups:\n  grace_period: soon\n", "2:17: cgroups.grace_period: expected a duration such as 30s, 5m or 1h, found \"soon\"" },
		{ "- a\n- b\n", "1:1: expected a mapping of sections, found a list" },
		{ "web: 3\n", "1:6: web: expected a mapping, found a scalar" },
		{ "web:\n  listen_address: \"x\n", "3:1: found unexpected end of stream while scanning a quoted scalar" },
		{ "web: {}\n---\nweb: {}\n", "2:1: only one YAML document is allowed" },
		{ "web:\n  max_connections: -1\n", "2:20: web.max_connections: expected a number from 0 to 100000, found \"-1\"" },
		{ "cgroups:\n  include: /a\n", "2:12: cgroups.include: expected a list of strings, found a scalar" },
		{ "cgroups:\n  exclude: [[a]]\n", "2:13: cgroups.exclude: expected a string, found a list" },
		{ "series:\n  max_per_family: lots\n", "2:19: series.max_per_family: expected a number from 0 to 100000, found \"lots\"" },
		{ "web:\n  timeout: forever\n", "2:12: web.timeout: expected a duration such as 30s, 5m or 1h, found \"forever\"" },
		{ "bpf:\n  stats_enabled: 1\n", "2:18: bpf.stats_enabled: expected true or false, found \"1\"" },
		{ "service:\n  user: [a]\n", "2:9: service.user: expected a scalar, found a list" },
		{ "web:\n  timeout: 4294967296\n", "2:12: web.timeout: expected a duration such as 30s, 5m or 1h, found \"4294967296\"" },
		{ "web:\n  timeout: 1s\n  timeout: 2s\n", "3:3: duplicate key \"timeout\" in section \"web\"" },
		{ "web:\n  timeout: 1s\nweb:\n  timeout: 2s\n", "3:1: duplicate section \"web\"" },
		{ "log:\n  level: \"debug\\0junk\"\n", "2:10: log.level: a NUL byte in the value" },
		{ "cgroups:\n  include: [\"a\\0b\"]\n", "2:13: cgroups.include: a NUL byte in the value" },
	};
	(void)state;
	expect_errors(cases, sizeof(cases) / sizeof(cases[0]), 0);
}

static int load_web(const char *yaml, struct web_config *w, char *err, size_t errlen)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(yaml, f);
	fclose(f);
	return web_config_load(w, path, err, errlen);
}

#define HASH_A "$2b$10$iiHGBtK/.5RIA/AUb/i4EuFzd8gywGyf.dTDPNdiW2/bZBgY13Miy"

static void test_web_config(void **state)
{
	struct web_config w;
	char err[512] = "";

	(void)state;
	/* relative files are relative to the web config's directory; /etc/hostname stands in for PEM */
	assert_int_equal(load_web("tls_server_config:\n  cert_file: /etc/hostname\n  key_file: /etc/hostname\n"
				  "  min_version: TLS13\nbasic_auth_users:\n  alice: " HASH_A "\n", &w, err, sizeof(err)), 0);
	assert_string_equal(w.cert_file, "/etc/hostname");
	assert_string_equal(w.min_version, "TLS13");
	assert_int_equal(w.nusers, 1);
	assert_string_equal(w.users[0].name, "alice");
	web_config_free(&w);
}

static void test_bad_web_files(void **state)
{
	static const struct bad_case cases[] = {
		{ "tls_server_config:\n  cert_file: /nonexistent/c.pem\n  key_file: /etc/hostname\n",
		  "2:14: tls_server_config.cert_file: /nonexistent/c.pem: No such file or directory" },
		{ "tls_server_config:\n  cert_file: /etc/hostname\n",
		  "2:3: tls_server_config: cert_file and key_file are both required" },
		{ "tls_server_config:\n  cert_file: /etc/hostname\n  key_file: /etc/hostname\n  min_version: TLS10\n",
		  "2:3: tls_server_config.min_version: expected TLS12 or TLS13, found \"TLS10\"" },
		{ "tls_server_config:\n  client_ca_file: /etc/hostname\n",
		  "2:3: unknown key \"client_ca_file\" in section \"tls_server_config\"" },
		{ "basic_auth_users:\n  alice: secret\n", "2:10: basic_auth_users.alice: expected a bcrypt hash ($2y$...)" },
		{ "basic_auth_users:\n  alice: $2b$10$tooshort\n",
		  "2:10: basic_auth_users.alice: expected a bcrypt hash ($2y$...)" },
		{ "basic_auth_users:\n  - alice\n", "2:3: basic_auth_users: expected a mapping, found a list" },
		{ "http_server_config:\n  http2: true\n", "1:1: unknown section \"http_server_config\"" },
		{ "basic_auth_users:\n  alice: " HASH_A "\n  alice: " HASH_A "\n",
		  "3:3: basic_auth_users: duplicate user \"alice\"" },
	};
	(void)state;
	expect_errors(cases, sizeof(cases) / sizeof(cases[0]), 1);
}

static void test_missing_file(void **state)
{
	struct config c;
	char err[512];

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_load(&c, "/nonexistent/fpu.yaml", err, sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent/fpu.yaml: No such file or directory");
	config_free(&c);
}

static void test_validate(void **state)
{
	struct config c;
	char err[512];

	(void)state;
	config_defaults(&c);
	free(c.telemetry_path);
	c.telemetry_path = strdup("metrics");
	assert_int_equal(config_validate(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "telemetry path \"metrics\" must start with / and not be /");
	free(c.telemetry_path);
	c.telemetry_path = strdup("/metrics");
	free(c.log_level);
	c.log_level = strdup("loud");
	assert_int_equal(config_validate(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "log level \"loud\" is not one of error, warn, info, debug");
	free(c.log_level);
	c.log_level = strdup("info");
	c.max_connections = 0;
	assert_int_equal(config_validate(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "web.max_connections must be at least 1");
	c.max_connections = 64;
	c.timeout = 3601;
	assert_int_equal(config_validate(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "web.timeout must be from 1s to 1h");
	c.timeout = 10;
	free(c.telemetry_path);
	c.telemetry_path = calloc(1, 1026);
	memset(c.telemetry_path, 'a', 1025);
	c.telemetry_path[0] = '/';
	assert_int_equal(config_validate(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "telemetry path longer than 1024 bytes");
	free(c.telemetry_path);
	c.telemetry_path = strdup("/metrics");
	free(c.user);
	c.user = strdup("no-such-user-here");
	assert_int_equal(config_validate(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "service.user \"no-such-user-here\": no such user");
	free(c.user);
	c.user = strdup("");
	/* glibc takes seconds and gigabytes for this one */
	c.cgroup_include.v = calloc(1, sizeof(char *));
	c.cgroup_include.v[0] = strdup("((((a{100}){100}){100}){100})");
	c.cgroup_include.n = 1;
	assert_int_equal(config_validate(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "cgroups.include[0] \"((((a{100}){100}){100}){100})\": too costly to compile "
			    "(over 2s of CPU or 256 MB)");
	free(c.cgroup_include.v[0]);
	c.cgroup_include.v[0] = strdup("^/system\\.slice");
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
	config_free(&c);
}

static void test_not_regular(void **state)
{
	struct config c;
	char err[512], fifo[64] = "/tmp/fpu_config_fifo.XXXXXX";

	(void)state;
	assert_non_null(mkdtemp(fifo));
	strcat(fifo, "/f");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	config_defaults(&c);
	assert_int_equal(config_load(&c, fifo, err, sizeof(err)), -1);	/* does not block */
	unlink(fifo);
	*strrchr(fifo, '/') = '\0';
	rmdir(fifo);
	assert_non_null(strstr(err, ": not a regular file"));
	config_free(&c);
}

static void test_durations(void **state)
{
	(void)state;
	assert_int_equal(config_parse_duration("90"), 90);
	assert_int_equal(config_parse_duration("90s"), 90);
	assert_int_equal(config_parse_duration("5m"), 300);
	assert_int_equal(config_parse_duration("1h"), 3600);
	assert_int_equal(config_parse_duration("1d"), -1);
	assert_int_equal(config_parse_duration("4294967296"), -1);	/* beyond a year */
	assert_int_equal(config_parse_duration("8760h"), 31536000);
	assert_int_equal(config_parse_duration("8761h"), -1);
	assert_int_equal(config_parse_duration("-5"), -1);
	assert_int_equal(config_parse_duration(""), -1);
}

static int setup(void **state)
{
	int fd = mkstemp(path);

	(void)state;
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_empty_file),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_web_config),
		cmocka_unit_test(test_bad_web_files),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_not_regular),
		cmocka_unit_test(test_durations),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
