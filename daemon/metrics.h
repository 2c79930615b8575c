/* metrics.h: turns the BPF maps into labelled samples at scrape time, and prunes what is gone. */
#ifndef METRICS_H
#define METRICS_H

#include "config.h"
#include "expo.h"

/* -1 with a message in err for settings that do not compile (cgroup patterns). */
int metrics_init(const struct config *cfg, char *err, size_t errlen);
/* Settings a reload may change; -1 with err keeps the old ones. */
int metrics_configure(const struct config *cfg, char *err, size_t errlen);
/*
 * Collects (reads the maps into the model, drops what is proven gone) and
 * renders the whole exposition into out.
 */
void metrics_render(struct buf *out, enum expo_format format);
/* What the last collection found in each BPF map (enum map_id order). */
struct map_stat {
	const char *name;
	size_t entries;
	unsigned int capacity;
	unsigned long long full;
	unsigned long long memory;	/* bytes, as the kernel accounts them */
};
int metrics_map_stats(const struct map_stat **out);
/* The collection without a render, for the event loop's housekeeping. */
void metrics_housekeep(void);
void metrics_fini(void);

#endif /* METRICS_H */
