/* test_chain.c: unit tests of the chained tables' sizing and freeing: growth, shrink after a burst, min, every entry kept. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "chain.h"

struct entry {
	struct entry *next;
	uint64_t key;
};

static size_t entry_index(const void *e, size_t nb)
{
	return chain_index_u64(((const struct entry *)e)->key, nb);
}

static struct entry **buckets;
static size_t nbuckets, n;

static void insert(uint64_t key)
{
	struct entry *e = calloc(1, sizeof(*e));

	chain_fit((void ***)&buckets, &nbuckets, n, 256, entry_index);
	e->key = key;
	e->next = buckets[chain_index_u64(key, nbuckets)];
	buckets[chain_index_u64(key, nbuckets)] = e;
	n++;
}

/* Entries found in their own chain, each key once; keys >= lo and < hi are all there. */
static void check(uint64_t lo, uint64_t hi)
{
	size_t seen = 0;

	for (size_t i = 0; i < nbuckets; i++)
		for (struct entry *e = buckets[i]; e; e = e->next) {
			assert_int_equal(entry_index(e, nbuckets), i);
			assert_true(e->key >= lo && e->key < hi);
			seen++;
		}
	assert_int_equal(seen, hi - lo);
}

static size_t freed;
static void count_free(void *e)
{
	(void)e;
	freed++;
}

static void test_fit(void **state)
{
	(void)state;
	chain_fit((void ***)&buckets, &nbuckets, 0, 256, entry_index);
	assert_int_equal(nbuckets, 256);	/* made with min */
	for (uint64_t k = 0; k < 10000; k++)
		insert(k);
	assert_int_equal(nbuckets, 8192);	/* doubled at 512, 1,024 ... 8,192 entries */
	check(0, 10000);
	/* a burst gone: 9,500 removed, the table shrinks by a quarter while under an eighth */
	for (size_t i = 0; i < nbuckets; i++) {
		struct entry **pp = &buckets[i], *e;

		while ((e = *pp)) {
			if (e->key < 9500) {
				*pp = e->next;
				free(e);
				n--;
			} else {
				pp = &e->next;
			}
		}
	}
	chain_fit((void ***)&buckets, &nbuckets, n, 256, entry_index);
	assert_int_equal(nbuckets, 2048);
	chain_fit((void ***)&buckets, &nbuckets, n, 256, entry_index);
	assert_int_equal(nbuckets, 2048);	/* 500 is not under 2,048 / 8 */
	check(9500, 10000);
	chain_fit((void ***)&buckets, &nbuckets, 0, 256, entry_index);
	chain_fit((void ***)&buckets, &nbuckets, 0, 256, entry_index);
	assert_int_equal(nbuckets, 256);	/* never below min (2,048 / 4 / 4 would be 128) */
	check(9500, 10000);
	chain_free((void ***)&buckets, &nbuckets, count_free);
	assert_int_equal(freed, 500);
	assert_null(buckets);
	assert_int_equal(nbuckets, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
