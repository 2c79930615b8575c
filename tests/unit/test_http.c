/* test_http.c: unit tests of listen-address parsing and basic-auth checks against bcrypt hashes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
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
	assert_true(http_auth_verify(&w, "alice", "s3cret", 6));
	assert_true(http_auth_verify(&w, "bob", "other", 5));
	assert_false(http_auth_verify(&w, "alice", "other", 5));
	assert_false(http_auth_verify(&w, "alice", "s3cret ", 7));
	assert_false(http_auth_verify(&w, "alice", "", 0));
	/* bcrypt would stop at the NUL */
	assert_false(http_auth_verify(&w, "alice", "s3cret\0junk", 11));
	/* an unknown user with the password that matches the hash it is timed against */
	assert_false(http_auth_verify(&w, "mallory", "s3cret", 6));
	assert_false(http_auth_verify(&w, NULL, NULL, 0));
	assert_false(http_auth_verify(&w, "alice", NULL, 0));
	assert_true(http_auth_verify(&none, NULL, NULL, 0));	/* no users: no auth */
}

static void test_basic_credentials(void **state)
{
	char *user, *pass;
	size_t len;

	(void)state;
	/* alice:s3cret */
	assert_int_equal(http_basic_credentials("Basic YWxpY2U6czNjcmV0", 22, &user, &pass, &len), 0);
	assert_string_equal(user, "alice");
	assert_int_equal(len, 6);
	assert_memory_equal(pass, "s3cret", 6);
	free(user);
	free(pass);
	/* alice:s3cret\0junk: the password keeps its NUL and what follows */
	assert_int_equal(http_basic_credentials("basic YWxpY2U6czNjcmV0AGp1bms=", 30, &user, &pass, &len), 0);
	assert_int_equal(len, 11);
	assert_memory_equal(pass, "s3cret\0junk", 11);
	free(user);
	free(pass);
	/* a:b:c: the password is everything after the first colon */
	assert_int_equal(http_basic_credentials("Basic YTpiOmM=", 14, &user, &pass, &len), 0);
	assert_string_equal(user, "a");
	assert_int_equal(len, 3);
	assert_memory_equal(pass, "b:c", 3);
	free(user);
	free(pass);
	assert_int_equal(http_basic_credentials("Bearer YTpi", 11, &user, &pass, &len), -1);
	assert_int_equal(http_basic_credentials("Basic YWxpY2U", 12, &user, &pass, &len), -1);	/* no colon */
	assert_int_equal(http_basic_credentials("Basic YT!i", 10, &user, &pass, &len), -1);	/* not base64 */
	assert_int_equal(http_basic_credentials("Basic YQ==Yg==", 14, &user, &pass, &len), -1);	/* data after padding */
	assert_int_equal(http_basic_credentials("Basic AGE6Yg==", 14, &user, &pass, &len), -1);	/* NUL in the user */
	assert_null(user);
	assert_null(pass);
}

static void test_negotiation(void **state)
{
	(void)state;
	assert_false(http_wants_openmetrics(NULL));
	assert_false(http_wants_openmetrics("*/*"));
	assert_false(http_wants_openmetrics("text/plain"));
	assert_true(http_wants_openmetrics("application/openmetrics-text"));
	assert_true(http_wants_openmetrics("application/openmetrics-text;version=1.0.0,"
					   "application/openmetrics-text;version=0.0.1;q=0.75,"
					   "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"));	/* Prometheus */
	assert_false(http_wants_openmetrics("application/openmetrics-text; q=0"));
	assert_false(http_wants_openmetrics("application/openmetrics-text;q=0.000"));
	assert_true(http_wants_openmetrics("application/openmetrics-text;q=0.9, text/plain;q=0.1"));
	assert_false(http_wants_openmetrics("application/openmetrics-text;q=0.1, text/plain;q=0.9"));
	assert_false(http_wants_openmetrics("application/openmetrics-text;q=0.5, text/*"));
	assert_true(http_wants_openmetrics("application/openmetrics-text, text/plain"));	/* a tie */
	assert_false(http_wants_openmetrics("application/openmetrics-textx"));
	assert_false(http_wants_openmetrics("application/openmetrics-text;q=2"));	/* malformed q */
	assert_false(http_wants_openmetrics("application/openmetrics-text;q=0.5x"));
	assert_true(http_wants_openmetrics("APPLICATION/OpenMetrics-Text ; Q=1.0"));
	assert_false(http_wants_gzip(NULL));
	assert_true(http_wants_gzip("gzip"));
	assert_true(http_wants_gzip("gzip;q=0.5"));
	assert_false(http_wants_gzip("gzip; q=0"));
	assert_false(http_wants_gzip("notgzip"));
	assert_false(http_wants_gzip("deflate, br"));
	assert_true(http_wants_gzip("deflate, *"));
	assert_false(http_wants_gzip("*, gzip;q=0"));	/* the named coding wins over * */
	assert_true(http_wants_gzip("x-gzip"));
	assert_true(http_wants_gzip(" br , gzip ;q=1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_address),
		cmocka_unit_test(test_basic_auth),
		cmocka_unit_test(test_basic_credentials),
		cmocka_unit_test(test_negotiation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
