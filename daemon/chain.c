/* chain.c: rehashing of chained hash tables whose entries start with their next pointer. */
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
