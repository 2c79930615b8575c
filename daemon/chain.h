/* chain.h: the daemon's pointer-chained hash tables (owners, label sets, sources, cgroup records and ids, VMs): sizing, freeing, a key's bucket. */
#ifndef CHAIN_H
#define CHAIN_H

#include <stddef.h>
#include <stdint.h>

/*
 * Entries start with their next pointer; index_of gives an entry's chain
 * among nb (a power of two).
 */

/* Moves every entry into nb new chains and frees the old array. */
void chain_rehash(void ***buckets, size_t *nbuckets, size_t nb,
		  size_t (*index_of)(const void *entry, size_t nb));

/*
 * Sizes the table for n entries: made with min chains, doubled at two
 * entries a chain, and once a burst has gone (under an eighth) a quarter,
 * never below min.  Call it before an insert, and after entries went.
 */
void chain_fit(void ***buckets, size_t *nbuckets, size_t n, size_t min,
	       size_t (*index_of)(const void *entry, size_t nb));

/* Frees every entry (after fn, if given, on each) and the array: the table is empty. */
void chain_free(void ***buckets, size_t *nbuckets, void (*fn)(void *entry));

/* The chain of a 64-bit key (a cgroup id, a pid) among nb. */
static inline size_t chain_index_u64(uint64_t key, size_t nb)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (nb - 1);
}

#endif /* CHAIN_H */
