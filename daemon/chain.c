/* chain.c: sizing, rehashing and freeing of chained hash tables whose entries start with their next pointer. */
#include "chain.h"
#include <stdlib.h>

#include "log.h"

void chain_rehash(void ***buckets, size_t *nbuckets, size_t nb,
		  size_t (*index_of)(const void *entry, size_t nb))
{
	void **b = xcalloc(nb, sizeof(*b));

	for (size_t i = 0; i < *nbuckets; i++) {
		void *e = (*buckets)[i], *next;

		for (; e; e = next) {
			size_t j = index_of(e, nb);

			next = *(void **)e;
			*(void **)e = b[j];
			b[j] = e;
		}
	}
	free(*buckets);
	*buckets = b;
	*nbuckets = nb;
}

void chain_fit(void ***buckets, size_t *nbuckets, size_t n, size_t min,
	       size_t (*index_of)(const void *entry, size_t nb))
{
	size_t nb = *nbuckets;

	if (!nb)
		chain_rehash(buckets, nbuckets, min, index_of);
	else if (n >= 2 * nb)
		chain_rehash(buckets, nbuckets, nb * 2, index_of);
	else if (nb > min && n < nb / 8)
		chain_rehash(buckets, nbuckets, nb / 4 > min ? nb / 4 : min, index_of);
}

void chain_free(void ***buckets, size_t *nbuckets, void (*fn)(void *entry))
{
	for (size_t i = 0; i < *nbuckets; i++) {
		void *e = (*buckets)[i], *next;

		for (; e; e = next) {
			next = *(void **)e;
			if (fn)
				fn(e);
			free(e);
		}
	}
	free(*buckets);
	*buckets = NULL;
	*nbuckets = 0;
}
