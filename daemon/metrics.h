/* metrics.h: turns the BPF maps into labelled samples at scrape time, and prunes what is gone. */
#ifndef METRICS_H
#define METRICS_H

#include "config.h"
#include "expo.h"

void metrics_init(const struct config *cfg);
/* Settings a reload may change. */
void metrics_configure(const struct config *cfg);
/* Renders the whole exposition into out; also drops map entries of exited threads and removed cgroups. */
void metrics_render(struct buf *out, enum expo_format format);
/* What the last collection found in each BPF map (enum map_id order). */
struct map_stat {
	const char *name;
	size_t entries;
	unsigned int capacity;
	unsigned long long full;
};
int metrics_map_stats(const struct map_stat **out);
/* The same pruning without a scrape, for the event loop's housekeeping. */
void metrics_housekeep(void);
void metrics_fini(void);

#endif /* METRICS_H */
