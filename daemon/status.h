/* status.h: the /status document: version, probes, maps and known VMs, as JSON. */
#ifndef STATUS_H
#define STATUS_H

#include "expo.h"

void status_render(struct buf *out);

#endif /* STATUS_H */
