/* metrics.h: turns the BPF maps into labelled samples at scrape time, and prunes what is gone. */
#ifndef METRICS_H
#define METRICS_H

#include "config.h"
#include "expo.h"

void metrics_init(const struct config *cfg);
/* Renders the whole exposition into out; also drops map entries of exited threads and removed cgroups. */
void metrics_render(struct buf *out);
/* The same pruning without a scrape, for the event loop's housekeeping. */
void metrics_housekeep(void);
void metrics_fini(void);

#endif /* METRICS_H */
