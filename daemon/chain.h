/* chain.h: rehashing of the daemon's pointer-chained hash tables (owners, label sets, sources, cgroup ids). */
#ifndef CHAIN_H
#define CHAIN_H

#include <stddef.h>

/*
 * Moves every entry of *buckets (*nbuckets chains) into nb new chains and
 * frees the old array.  Entries start with their next pointer; index_of
 * gives an entry's chain among nb (a power of two).
 */
void chain_rehash(void ***buckets, size_t *nbuckets, size_t nb,
		  size_t (*index_of)(const void *entry, size_t nb));

#endif /* CHAIN_H */
