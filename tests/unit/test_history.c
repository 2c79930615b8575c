/* test_history.c: unit tests of the recent-rates ring: sums by name, ranking of every name, idle cgroups, the ring's bound, names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "history.h"

static time_t now = 1000000;

/* One sample: VMs a (two vCPUs) and b, cgroups /busy and /idle, at the given totals. */
static void sample(uint64_t a, uint64_t b, uint64_t busy)
{
	struct timespec pause = { 0, 2000000 };	/* so the monotonic clock moves */

	nanosleep(&pause, NULL);
	history_begin(now);
	history_add(HISTORY_VM, "a", 1, a / 2);
	history_add(HISTORY_VM, "a", 1, a - a / 2);
	history_add(HISTORY_VM, "b", 1, b);
	history_add(HISTORY_CGROUP, "/busy", 5, busy);
	history_add(HISTORY_CGROUP, "/idle", 5, 7);
	history_end();
	now += HISTORY_STEP_S;
}

static void test_rates_and_order(void **state)
{
	const struct history_row *const *rows;
	double ra, rb, rate;
	time_t t;
	size_t n;

	(void)state;
	sample(0, 0, 0);
	n = history_rows(HISTORY_VM, &rows);
	assert_int_equal(n, 2);		/* VMs have rows before their first rate */
	assert_int_equal(rows[0]->n, 0);
	assert_int_equal(history_rows(HISTORY_CGROUP, &rows), 0);	/* cgroups only with a rate */

	sample(100, 400, 50);		/* b grew 4 times what a did: b first */
	n = history_rows(HISTORY_VM, &rows);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0]->name, "b");
	assert_string_equal(rows[1]->name, "a");
	history_point(rows[0], 0, &t, &rb);
	history_point(rows[1], 0, &t, &ra);
	assert_true(ra > 0);
	assert_true(rb / ra > 3.99 && rb / ra < 4.01);	/* the two vCPUs of a were summed */

	/* the idle cgroup takes no row, the busy one does */
	n = history_rows(HISTORY_CGROUP, &rows);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0]->name, "/busy");

	sample(1100, 500, 50);		/* now a is faster */
	n = history_rows(HISTORY_VM, &rows);
	assert_string_equal(rows[0]->name, "a");
	assert_int_equal(rows[0]->n, 2);	/* it kept its ring */
	history_point(rows[0], 1, &t, &rate);
	assert_true(rate > 0);
	/* /busy did not save: it keeps its row, with a zero */
	n = history_rows(HISTORY_CGROUP, &rows);
	assert_int_equal(n, 1);
	history_point(rows[0], 1, &t, &rate);
	assert_true(rate == 0);
}

static void test_ring_bound(void **state)
{
	const struct history_row *const *rows;
	time_t t0, t1;
	double rate;

	(void)state;
	for (uint64_t i = 0; i < HISTORY_POINTS + 10; i++)
		sample(2000 + i * 10, 1000 + i, 100 + i);
	history_rows(HISTORY_VM, &rows);
	assert_int_equal(rows[0]->n, HISTORY_POINTS);
	history_point(rows[0], 0, &t0, &rate);
	history_point(rows[0], HISTORY_POINTS - 1, &t1, &rate);
	assert_int_equal(t1 - t0, (HISTORY_POINTS - 1) * HISTORY_STEP_S);	/* oldest first */
	assert_int_equal(t1, now - HISTORY_STEP_S);
}

/*
 * Every name of a sample is ranked, however many: of 5,000 cgroups, the
 * last one walked is the busiest, and the 16 rows are the 16 busiest in
 * order.  Between samples only each name's total is kept.
 */
static void test_every_name_ranked(void **state)
{
	enum { N = 5000 };
	const struct history_row *const *rows;
	double kept;
	cJSON *j;
	char name[32];

	(void)state;
	for (int round = 0; round < 2; round++) {
		history_begin(now);
		for (int i = 0; i < N; i++) {
			int len = snprintf(name, sizeof(name), "/cg%d", i);

			history_add(HISTORY_CGROUP, name, (size_t)len, (uint64_t)(round * (i + 1)));
		}
		history_end();
		now += HISTORY_STEP_S;
	}
	assert_int_equal(history_rows(HISTORY_CGROUP, &rows), HISTORY_CG_ROWS);
	for (int i = 0; i < HISTORY_CG_ROWS; i++) {
		snprintf(name, sizeof(name), "/cg%d", N - 1 - i);
		assert_string_equal(rows[i]->name, name);
	}
	j = history_json(now);
	assert_null(cJSON_GetObjectItem(j, "unranked"));
	assert_non_null(cJSON_GetObjectItem(j, "sample_bytes"));
	kept = cJSON_GetObjectItem(j, "memory_bytes")->valuedouble;
	cJSON_Delete(j);
	/* between samples the history keeps 16 bytes a name: 100 names more, 1,600 bytes more */
	history_begin(now);
	for (int i = 0; i < N + 100; i++) {
		int len = snprintf(name, sizeof(name), "/cg%d", i);

		history_add(HISTORY_CGROUP, name, (size_t)len, (uint64_t)(2 * (i + 1)));
	}
	history_end();
	now += HISTORY_STEP_S;
	j = history_json(now);
	assert_int_equal((long)(cJSON_GetObjectItem(j, "memory_bytes")->valuedouble - kept), 1600);
	cJSON_Delete(j);
}

static void test_names(void **state)
{
	const struct history_row *const *rows;
	char longname[300];

	(void)state;
	memset(longname, 'x', sizeof(longname));
	memcpy(longname + HISTORY_NAME_MAX - 2, "\xc3\xa9", 2);	/* é across the cut */
	history_begin(now);
	history_add(HISTORY_VM, "q\\\"uote", 8, 1);
	history_add(HISTORY_VM, longname, sizeof(longname), 1);
	history_end();
	now += HISTORY_STEP_S;
	history_rows(HISTORY_VM, &rows);
	assert_int_equal(history_rows(HISTORY_VM, &rows), 2);
	assert_string_equal(rows[0]->name, "q\"uote");	/* unescaped from the label */
	assert_int_equal(strlen(rows[1]->name), HISTORY_NAME_MAX - 2);	/* no half character */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rates_and_order),
		cmocka_unit_test(test_ring_bound),
		cmocka_unit_test(test_every_name_ranked),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
