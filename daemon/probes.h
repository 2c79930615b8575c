/* probes.h: loading and attaching the BPF programs, and what each probe's status is. */
#ifndef PROBES_H
#define PROBES_H

#include <stdint.h>
#include <linux/types.h>

#include "config.h"
#include "fpu_exporter.h"

struct probe_status {
	const char *probe;	/* "subsystem:tracepoint" */
	const char *program;	/* BPF program name */
	int attached;
	const char *why;	/* when not attached */
	uint64_t run_time_ns;	/* kernel.bpf_stats_enabled counters */
	uint64_t run_count;
	uint64_t missed;	/* runs skipped by the kernel's recursion guard */
};

struct probe_maps {
	int cgroup_hot;
	int cgroup_rare;
	int cgroup_xstates;
	int guest_xstates;
	int vcpu_threads;
	int map_full;
	int removed_cgroups;
	int xcomp_requests;
};

/* The maps' sizes, from bpf.* or the CPU count. */
struct probe_sizes {
	long cgroups, xstates, guest_xstates, vcpu_threads, removed_cgroups;
};

/* Loads and attaches what the configuration enables; -errno (logged) when nothing can run. */
int probes_init(const struct config *cfg);
void probes_fini(void);
/* Do map reads and program stats still work with the capabilities now effective? */
int probes_unprivileged_ok(void);

/* Enabled probes and their status, stats refreshed; returns the count. */
int probes_status(const struct probe_status **out);
const struct probe_maps *probes_maps(void);
/* The fd of a map by its enum map_id (fpu_exporter.h). */
int probes_map_fd(enum map_id id);
const char *probes_libbpf_version(void);

/*
 * A memfd holding one BTF: the raw BTF at base_path followed by the split
 * BTF at split_path (a module's, in /sys/kernel/btf) that builds on it; or
 * -errno.  For CO-RE against module types without reading module BTF by id.
 */
int btf_join_split(const char *base_path, const char *split_path);

#endif /* PROBES_H */
