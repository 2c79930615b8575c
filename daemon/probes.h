/* probes.h: loading and attaching the BPF programs, and what each probe's status is. */
#ifndef PROBES_H
#define PROBES_H

#include <stdint.h>

#include "config.h"

struct probe_status {
	const char *probe;	/* "subsystem:tracepoint" */
	const char *program;	/* BPF program name */
	int attached;
	const char *why;	/* when not attached */
	uint64_t run_time_ns;	/* kernel.bpf_stats_enabled counters */
	uint64_t run_count;
};

struct probe_maps {
	int cgroup_events;
	int guest_xstates;
	int vcpu_threads;
	int map_full;
	int removed_cgroups;
};

/* Loads and attaches what the configuration enables; -errno (logged) when nothing can run. */
int probes_init(const struct config *cfg);
void probes_fini(void);
/* Do map reads and program stats still work with the capabilities now effective? */
int probes_unprivileged_ok(void);

/* Enabled probes and their status, stats refreshed; returns the count. */
int probes_status(const struct probe_status **out);
const struct probe_maps *probes_maps(void);
const char *probes_libbpf_version(void);

#endif /* PROBES_H */
