/* test_expo.c: unit tests of the text exposition: escaping, ordering, merging, HELP/TYPE once per family. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "expo.h"

static const struct family fam_b = { "b_total", METRIC_COUNTER, "B \\ things\nsecond line", 0 };
static const struct family fam_a = { "a_info", METRIC_GAUGE, "A info.", 1 };

static void test_label_escaping(void **state)
{
	struct buf b = { 0 };

	(void)state;
	expo_escape_label(&b, "a\\b\"c\nd");
	assert_string_equal(b.data, "a\\\\b\\\"c\\nd");
	buf_reset(&b);
	expo_escape_help(&b, "x\\y\"z\nw");
	assert_string_equal(b.data, "x\\\\y\"z\\nw");
	buf_free(&b);
}

static void test_sorted_merged_rendering(void **state)
{
	struct expo e = { 0 };
	struct buf out = { 0 };
	struct label l1[] = { { "cgroup", "/z" } }, l2[] = { { "cgroup", "/a\"q" } };

	(void)state;
	expo_add(&e, &fam_b, 2, 1, l1);
	expo_add(&e, &fam_a, 1, 0, NULL);
	expo_add(&e, &fam_b, 5, 1, l2);
	expo_add(&e, &fam_b, 3, 1, l1);	/* same labels: summed */
	expo_render(&e, &out, EXPO_TEXT);
	assert_string_equal(out.data,
		"# HELP a_info A info.\n"
		"# TYPE a_info gauge\n"
		"a_info 1\n"
		"# HELP b_total B \\\\ things\\nsecond line\n"
		"# TYPE b_total counter\n"
		"b_total{cgroup=\"/a\\\"q\"} 5\n"
		"b_total{cgroup=\"/z\"} 5\n");
	expo_free(&e);
	buf_free(&out);
}

static void test_values(void **state)
{
	struct expo e = { 0 };
	struct buf out = { 0 };
	struct label l[] = { { "k", "v" } };

	(void)state;
	expo_add(&e, &fam_a, 0.1, 1, l);
	expo_add(&e, &fam_b, 18446744073709551615.0, 0, NULL);
	expo_render(&e, &out, EXPO_TEXT);
	assert_non_null(strstr(out.data, "a_info{k=\"v\"} 0.1\n"));
	assert_non_null(strstr(out.data, "b_total 1.8446744073709552e+19\n"));
	expo_free(&e);
	buf_free(&out);
}

static void test_multiple_labels_in_given_order(void **state)
{
	struct expo e = { 0 };
	struct buf out = { 0 };
	struct label l[] = { { "domain", "vm1" }, { "vcpu", "0" } };

	(void)state;
	expo_add(&e, &fam_b, 7, 2, l);
	expo_render(&e, &out, EXPO_TEXT);
	assert_non_null(strstr(out.data, "b_total{domain=\"vm1\",vcpu=\"0\"} 7\n"));
	expo_free(&e);
	buf_free(&out);
}

static void test_openmetrics(void **state)
{
	struct expo e = { 0 };
	struct buf out = { 0 };

	(void)state;
	expo_add(&e, &fam_b, 4, 0, NULL);
	expo_render(&e, &out, EXPO_OPENMETRICS);
	assert_string_equal(out.data,
		"# HELP b B \\\\ things\\nsecond line\n"
		"# TYPE b counter\n"
		"b_total 4\n"
		"# EOF\n");
	expo_free(&e);
	buf_free(&out);
}

static void test_info_not_summed(void **state)
{
	struct expo e = { 0 };
	struct buf out = { 0 };
	struct label l[] = { { "cgroup", "/x" } };

	(void)state;
	expo_add(&e, &fam_a, 1, 1, l);
	expo_add(&e, &fam_a, 1, 1, l);
	expo_render(&e, &out, EXPO_TEXT);
	assert_non_null(strstr(out.data, "a_info{cgroup=\"/x\"} 1\n"));
	expo_free(&e);
	buf_free(&out);
}

static void test_overflow_folding(void **state)
{
	struct expo e = { .max_series = 2 };
	struct buf out = { 0 };
	const char *cg[] = { "/a", "/b", "/c\"q", "/d" };

	(void)state;
	for (int i = 0; i < 4; i++) {
		struct label l[] = { { "cgroup", cg[i] }, { "reason", "bad_frame" } };

		expo_add(&e, &fam_b, i + 1, 2, l);
	}
	expo_add(&e, &fam_a, 1, 0, NULL);	/* another family keeps its own count */
	assert_int_equal(expo_merge(&e), 2);
	expo_render(&e, &out, EXPO_TEXT);
	assert_non_null(strstr(out.data,
		"b_total{cgroup=\"/a\",reason=\"bad_frame\"} 1\n"
		"b_total{cgroup=\"/b\",reason=\"bad_frame\"} 2\n"
		"b_total{cgroup=\"overflow\",reason=\"overflow\"} 7\n"));
	assert_non_null(strstr(out.data, "a_info 1\n"));
	expo_free(&e);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_sorted_merged_rendering),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_multiple_labels_in_given_order),
		cmocka_unit_test(test_openmetrics),
		cmocka_unit_test(test_info_not_summed),
		cmocka_unit_test(test_overflow_folding),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
