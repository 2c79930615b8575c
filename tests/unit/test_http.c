/* test_http.c: unit tests of listen-address parsing and basic-auth checks against bcrypt hashes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "http.h"

static void test_parse_address(void **state)
{
	char host[64], port[16], err[256];

	(void)state;
	assert_int_equal(http_parse_address(":9659", host, sizeof(host), port, sizeof(port), err, sizeof(err)), 0);
	assert_string_equal(host, "");
	assert_string_equal(port, "9659");
	assert_int_equal(http_parse_address("127.0.0.1:1", host, sizeof(host), port, sizeof(port), err, sizeof(err)), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(http_parse_address("[::1]:80", host, sizeof(host), port, sizeof(port), err, sizeof(err)), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(http_parse_address("::1:80", host, sizeof(host), port, sizeof(port), err, sizeof(err)), -1);
	assert_string_equal(err, "listen address \"::1:80\": expected host:port or :port");
	assert_int_equal(http_parse_address("[::1]80", host, sizeof(host), port, sizeof(port), err, sizeof(err)), -1);
	assert_string_equal(err, "listen address \"[::1]80\": expected [IPv6]:port");
	assert_int_equal(http_parse_address("h:", host, sizeof(host), port, sizeof(port), err, sizeof(err)), -1);
	assert_string_equal(err, "listen address \"h:\": bad port");
	assert_int_equal(http_parse_address("h:9x", host, sizeof(host), port, sizeof(port), err, sizeof(err)), -1);
}

static void test_basic_auth(void **state)
{
	struct web_user users[] = {
		{ "alice", "$2b$10$iiHGBtK/.5RIA/AUb/i4EuFzd8gywGyf.dTDPNdiW2/bZBgY13Miy" },	/* s3cret */
		{ "bob", "$2b$10$tcqXskXy3lge6Q3Peb4QUumL89CzaELw.JZ1RxgVIOovv8e9CEbFu" },	/* other */
	};
	struct web_config w = { .users = users, .nusers = 2 }, none = { 0 };

	(void)state;
	assert_true(http_auth_verify(&w, "alice", "s3cret"));
	assert_true(http_auth_verify(&w, "bob", "other"));
	assert_false(http_auth_verify(&w, "alice", "other"));
	assert_false(http_auth_verify(&w, "alice", "s3cret "));
	assert_false(http_auth_verify(&w, "alice", ""));
	/* an unknown user with the password that matches the hash it is timed against */
	assert_false(http_auth_verify(&w, "mallory", "s3cret"));
	assert_false(http_auth_verify(&w, NULL, NULL));
	assert_false(http_auth_verify(&w, "alice", NULL));
	assert_true(http_auth_verify(&none, NULL, NULL));	/* no users: no auth */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_address),
		cmocka_unit_test(test_basic_auth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
