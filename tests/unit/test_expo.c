/* test_expo.c: unit tests of the exposition and the series model: escaping, UTF-8, order, overflow, lifetimes, reuse. */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <zlib.h>

#include "expo.h"
#include "model.h"

static const struct family fam_b = { "b_total", METRIC_COUNTER, "B \\ things\nsecond line", 0 };
static const struct family fam_a = { "a_info", METRIC_GAUGE, "A info.", 1 };
static const struct family *const fams[] = { &fam_a, &fam_b };

static struct model *new_model(size_t max)
{
	struct model *m = model_new(fams, 2);

	model_set_max_series(m, max);
	return m;
}

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

/* Invalid UTF-8 becomes U+FFFD, the same way each time; valid text (and {} ") passes as it is. */
static void test_utf8(void **state)
{
	char out[64];
	struct buf b = { 0 };
	struct label l[] = { { "cgroup", "/bad\xff" }, { "d", "\xc3\xa9t\xc3" } };

	(void)state;
	assert_int_equal(utf8_sanitize("/bad\xff", out, sizeof(out)), 7);
	assert_string_equal(out, "/bad\xef\xbf\xbd");
	utf8_sanitize("\xed\xa0\x80x", out, sizeof(out));	/* a UTF-16 surrogate */
	assert_string_equal(out, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx");
	utf8_sanitize("\xc0\xaf", out, sizeof(out));		/* an overlong '/' */
	assert_string_equal(out, "\xef\xbf\xbd\xef\xbf\xbd");
	utf8_sanitize("\xf0\x9f\x98\x80{}\"", out, sizeof(out));
	assert_string_equal(out, "\xf0\x9f\x98\x80{}\"");
	assert_true(utf8_valid(out, strlen(out)));
	utf8_sanitize("abc\xe2\x82\xac", out, 6);		/* no character cut in half */
	assert_string_equal(out, "abc");
	expo_labels(&b, 2, l);
	assert_string_equal(b.data, "{cgroup=\"/bad\xef\xbf\xbd\",d=\"\xc3\xa9t\xef\xbf\xbd\"}");
	buf_free(&b);
}

/* Families in the order given, series in the order made, each family's HELP and TYPE once. */
static void test_render_order(void **state)
{
	struct model *m = new_model(0);
	struct owner *o = model_owner(m, "o", 60);
	struct buf out = { 0 };
	struct label l1[] = { { "cgroup", "/z" } }, l2[] = { { "cgroup", "/a\"q" } };
	series_id z = model_series(m, &fam_b, o, 1, l1);
	series_id a = model_series(m, &fam_b, o, 1, l2);

	(void)state;
	model_add(m, z, 2);
	model_add(m, a, 5);
	model_add(m, model_series(m, &fam_b, o, 1, l1), 3);	/* the same series: one more reference */
	assert_int_equal(model_series(m, &fam_b, o, 1, l1), z);
	model_series(m, &fam_a, o, 0, NULL);
	model_render(m, &out, EXPO_TEXT);
	assert_string_equal(out.data,
		"# HELP a_info A info.\n"
		"# TYPE a_info gauge\n"
		"a_info 1\n"
		"# HELP b_total B \\\\ things\\nsecond line\n"
		"# TYPE b_total counter\n"
		"b_total{cgroup=\"/z\"} 5\n"
		"b_total{cgroup=\"/a\\\"q\"} 5\n");
	buf_reset(&out);
	model_render(m, &out, EXPO_OPENMETRICS);
	expo_end(&out, EXPO_OPENMETRICS);
	assert_non_null(strstr(out.data, "# HELP b B \\\\ things\\nsecond line\n# TYPE b counter\n"));
	assert_non_null(strstr(out.data, "b_total{cgroup=\"/z\"} 5\n"));
	assert_non_null(strstr(out.data, "\n# EOF\n"));
	model_owner_put(m, o);
	model_free(m);
	buf_free(&out);
}

static void test_values(void **state)
{
	struct buf out = { 0 };
	struct label l[] = { { "k", "v" } };

	(void)state;
	expo_add(&out, &fam_a, 0.1, 1, l);
	expo_add(&out, &fam_b, 18446744073709551615.0, 0, NULL);
	expo_sample_u64(&out, "b_total", 7, "", 0, "", 0, UINT64_MAX);
	expo_add(&out, &fam_a, -3, 0, NULL);
	assert_string_equal(out.data, "a_info{k=\"v\"} 0.1\n"
				      "b_total 1.8446744073709552e+19\n"
				      "b_total 18446744073709551615\n"
				      "a_info -3\n");
	buf_free(&out);
}

/*
 * max_per_family keeps the first series made; later counters go to one
 * overflow series, later info series are dropped, and each is counted.
 */
static void test_overflow(void **state)
{
	struct model *m = new_model(2);
	struct owner *o = model_owner(m, "o", 60);
	struct buf out = { 0 };
	const char *cg[] = { "/d", "/b", "/c\"q", "/a" };
	struct model_stats st;

	(void)state;
	for (int i = 0; i < 4; i++) {
		struct label l[] = { { "cgroup", cg[i] }, { "reason", "bad_frame" } };

		model_add(m, model_series(m, &fam_b, o, 2, l), (uint64_t)i + 1);
		assert_true(model_series(m, &fam_a, o, 2, l) != 0 || i >= 2);
	}
	model_render(m, &out, EXPO_TEXT);
	assert_non_null(strstr(out.data,
		"b_total{cgroup=\"/d\",reason=\"bad_frame\"} 1\n"
		"b_total{cgroup=\"/b\",reason=\"bad_frame\"} 2\n"
		"b_total{cgroup=\"overflow\",reason=\"overflow\"} 7\n"));
	assert_null(strstr(out.data, "a_info{cgroup=\"overflow\""));
	model_stats(m, &st);
	assert_int_equal(st.overflowed, 4);	/* two counters, two info series */
	assert_int_equal(st.series, 5);
	model_owner_put(m, o);
	model_free(m);
	buf_free(&out);
}

/*
 * A series lives while held, then for its owner's grace after the owner was
 * last alive; what members added stays in it: counters never go back.
 */
static void test_lifetimes(void **state)
{
	struct model *m = new_model(0);
	struct owner *o = model_owner_label(m, &(struct label){ "cgroup", "/x" }, 60);
	struct label l[] = { { "cgroup", "/x" } };
	series_id s1 = model_series(m, &fam_b, o, 1, l), s2 = model_series(m, &fam_b, o, 1, l);
	struct buf out = { 0 };
	struct model_stats st;

	(void)state;
	model_begin(m);
	model_owner_alive(m, o, 1000);
	model_begin(m);
	model_add(m, s1, 40);
	model_add(m, s2, 2);
	model_series_put(m, s1);	/* one member leaves: the series keeps its 42 */
	model_prune(m, 5000);
	model_render(m, &out, EXPO_TEXT);
	assert_non_null(strstr(out.data, "b_total{cgroup=\"/x\"} 42\n"));
	model_series_put(m, s2);	/* no member left, owner alive within grace: kept */
	model_prune(m, 1059);
	model_stats(m, &st);
	assert_int_equal(st.series, 1);
	model_prune(m, 1060);		/* grace over: gone */
	model_stats(m, &st);
	assert_int_equal(st.series, 0);
	model_owner_put(m, o);
	model_stats(m, &st);
	assert_int_equal(st.owners, 0);
	model_free(m);
	buf_free(&out);
}

static void walk_collect(void *arg, const char *labels, uint64_t value)
{
	buf_printf(arg, "%s=%" PRIu64 ";", labels, value);
}

/*
 * An owner's label is stored once: its series keep the rest of their labels,
 * are found the same by their whole label set or under the owner, render and
 * walk as whole label sets; a set that does not start with the owner's label
 * is kept whole; the overflow series takes the owner's label name too.
 */
static void test_owner_prefix(void **state)
{
	struct model *m = new_model(3);
	struct owner *o = model_owner_label(m, &(struct label){ "cgroup", "/a\"q" }, 60);
	struct label one[] = { { "cgroup", "/a\"q" } }, two[] = { { "cgroup", "/a\"q" }, { "reason", "x" } },
		     other[] = { { "cgroup", "/a\"qq" } };
	series_id s1 = model_series_under(m, &fam_b, o, 0, NULL);
	series_id s2 = model_series_under(m, &fam_b, o, 1, &two[1]);
	series_id s3 = model_series(m, &fam_b, o, 1, other);
	struct buf out = { 0 }, walk = { 0 };
	struct model_stats st;

	(void)state;
	assert_true(s1 != s2 && s2 != s3 && s1 != s3);
	assert_int_equal(model_series(m, &fam_b, o, 1, one), s1);
	assert_int_equal(model_series(m, &fam_b, o, 2, two), s2);
	assert_int_equal(model_series(m, &fam_b, o, 1, other), s3);
	assert_ptr_equal(model_owner_label(m, &(struct label){ "cgroup", "/a\"q" }, 60), o);
	model_add(m, s1, 1);
	model_add(m, s2, 2);
	model_add(m, s3, 3);
	model_add(m, model_series_under(m, &fam_b, o, 1, &(struct label){ "reason", "y" }), 4);	/* the 4th */
	model_render(m, &out, EXPO_TEXT);
	assert_string_equal(out.data,
		"# HELP b_total B \\\\ things\\nsecond line\n"
		"# TYPE b_total counter\n"
		"b_total{cgroup=\"/a\\\"q\"} 1\n"
		"b_total{cgroup=\"/a\\\"q\",reason=\"x\"} 2\n"
		"b_total{cgroup=\"/a\\\"qq\"} 3\n"
		"b_total{cgroup=\"overflow\",reason=\"overflow\"} 4\n");
	model_walk(m, &fam_b, walk_collect, &walk);
	assert_string_equal(walk.data, "{cgroup=\"/a\\\"q\"}=1;{cgroup=\"/a\\\"q\",reason=\"x\"}=2;"
				       "{cgroup=\"/a\\\"qq\"}=3;{cgroup=\"overflow\",reason=\"overflow\"}=4;");
	model_stats(m, &st);
	assert_int_equal(st.series, 4);
	assert_int_equal(st.owners, 1);
	for (int i = 0; i < 2; i++) {
		model_series_put(m, s1);
		model_series_put(m, s2);
		model_series_put(m, s3);
	}
	model_owner_put(m, o);	/* the two model_owner_label calls */
	model_owner_put(m, o);
	model_begin(m);
	model_prune(m, time(NULL) + 61);
	model_stats(m, &st);
	assert_int_equal(st.series, 1);	/* the overflow series stays */
	assert_int_equal(st.owners, 0);
	model_free(m);
	buf_free(&out);
	buf_free(&walk);
}

/* churn N...: the series of owners /PREFIX0../PREFIX(n-1), three each, made in that order. */
struct churn_owner {
	struct owner *o;
	series_id plain, reason, info;
};

static void churn_make(struct model *m, struct churn_owner *c, const char *prefix, int n)
{
	for (int i = 0; i < n; i++) {
		char path[32], unit[16];

		snprintf(path, sizeof(path), "/%s%d", prefix, i);
		snprintf(unit, sizeof(unit), "u%d", i % 7);	/* label sets shared by many series */
		c[i].o = model_owner_label(m, &(struct label){ "cgroup", path }, 10);
		c[i].plain = model_series_under(m, &fam_b, c[i].o, 0, NULL);
		c[i].reason = model_series_under(m, &fam_b, c[i].o, 1, &(struct label){ "reason", path + 1 });
		c[i].info = model_series_under(m, &fam_a, c[i].o, 1, &(struct label){ "unit", unit });
		model_add(m, c[i].plain, (uint64_t)i + 1);
		model_add(m, c[i].reason, (uint64_t)i + 1000000);
	}
}

static void churn_drop(struct model *m, struct churn_owner *c)
{
	model_series_put(m, c->plain);
	model_series_put(m, c->reason);
	model_series_put(m, c->info);
	model_owner_put(m, c->o);
	c->o = NULL;
}

/* The expected render: families in order, each one's series in the order made. */
static void churn_expect(struct buf *b, struct churn_owner *const *sets, const char *const *prefixes,
			 const int *ns, int nsets)
{
	buf_printf(b, "# HELP a_info A info.\n# TYPE a_info gauge\n");
	for (int k = 0; k < nsets; k++)
		for (int i = 0; i < ns[k]; i++)
			if (sets[k][i].o)
				buf_printf(b, "a_info{cgroup=\"/%s%d\",unit=\"u%d\"} 1\n", prefixes[k], i, i % 7);
	buf_printf(b, "# HELP b_total B \\\\ things\\nsecond line\n# TYPE b_total counter\n");
	for (int k = 0; k < nsets; k++)
		for (int i = 0; i < ns[k]; i++)
			if (sets[k][i].o)
				buf_printf(b, "b_total{cgroup=\"/%s%d\"} %d\n"
					      "b_total{cgroup=\"/%s%d\",reason=\"%s%d\"} %d\n",
					   prefixes[k], i, i + 1, prefixes[k], i, prefixes[k], i, i + 1000000);
}

/*
 * Series are records in slabs of 4,096 named by id, with interned label
 * sets: 9,000 series over three slabs; half their owners go and are pruned;
 * 9,000 more reuse the freed records first.  Every series keeps its labels
 * and value, and the render is exactly what was made, in the order made.
 */
static void test_churn_reuse(void **state)
{
	enum { N = 3000 };
	struct model *m = new_model(0);
	struct churn_owner *old = calloc(N, sizeof(*old)), *new = calloc(N, sizeof(*new));
	struct buf out = { 0 }, want = { 0 };
	struct model_stats st;

	(void)state;
	churn_make(m, old, "c", N);
	model_stats(m, &st);
	assert_int_equal(st.series, 3 * N);
	for (int i = 0; i < N; i += 2)
		churn_drop(m, &old[i]);
	model_begin(m);
	model_prune(m, time(NULL) + 11);
	model_stats(m, &st);
	assert_int_equal(st.series, 3 * N / 2);
	assert_int_equal(st.owners, N / 2);
	churn_make(m, new, "n", N);
	model_stats(m, &st);
	assert_int_equal(st.series, 3 * N / 2 + 3 * N);
	model_render(m, &out, EXPO_TEXT);
	churn_expect(&want, (struct churn_owner *[]){ old, new }, (const char *[]){ "c", "n" },
		     (int[]){ N, N }, 2);
	assert_string_equal(out.data, want.data);
	/* the same label sets find the same series */
	assert_int_equal(model_series_under(m, &fam_b, new[7].o, 1, &(struct label){ "reason", "n7" }),
			 new[7].reason);
	model_series_put(m, new[7].reason);
	for (int i = 1; i < N; i += 2)
		churn_drop(m, &old[i]);
	for (int i = 0; i < N; i++)
		churn_drop(m, &new[i]);
	model_begin(m);
	model_prune(m, time(NULL) + 11);
	model_stats(m, &st);
	assert_int_equal(st.series, 0);
	assert_int_equal(st.owners, 0);
	buf_reset(&out);
	model_render(m, &out, EXPO_TEXT);
	assert_int_equal(out.len, 0);
	model_free(m);
	free(old);
	free(new);
	buf_free(&out);
	buf_free(&want);
}

/* A render streamed through gzip in chunks inflates to exactly the plain render. */
static void test_gzip_stream(void **state)
{
	struct buf plain = { 0 }, in = { 0 }, gz = { 0 };
	struct gz_stream *g = NULL;
	z_stream z = { 0 };
	char *back;
	int rc;

	(void)state;
	for (int pass = 0; pass < 2; pass++) {
		struct buf *b = pass ? &in : &plain;

		if (pass)
			assert_non_null(g = gz_begin(&in, &gz));
		for (int i = 0; i < 20000; i++) {
			char v[32];
			struct label l[] = { { "cgroup", v } };

			snprintf(v, sizeof(v), "/c%d\"x", i);
			expo_add(b, &fam_b, i, 1, l);
		}
	}
	assert_true(in.len < 70 * 1024);	/* drained in chunks, never the whole text */
	assert_int_equal(gz_end(g, &in), 0);
	assert_null(in.flush);
	back = malloc(plain.len + 1);
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)gz.data;
	z.avail_in = (uInt)gz.len;
	z.next_out = (Bytef *)back;
	z.avail_out = (uInt)plain.len + 1;
	rc = inflate(&z, Z_FINISH);
	assert_int_equal(rc, Z_STREAM_END);
	assert_int_equal(z.total_out, plain.len);
	assert_memory_equal(back, plain.data, plain.len);
	inflateEnd(&z);
	free(back);
	buf_free(&plain);
	buf_free(&in);
	buf_free(&gz);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_render_order),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_lifetimes),
		cmocka_unit_test(test_owner_prefix),
		cmocka_unit_test(test_churn_reuse),
		cmocka_unit_test(test_gzip_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
