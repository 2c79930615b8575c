/* maps.bpf.h: the exporter's BPF maps and the one way the programs update them. */
#ifndef MAPS_BPF_H
#define MAPS_BPF_H

#include "fpu_exporter.h"

#define E2BIG	7	/* errno.h is not for BPF */

/*
 * Sizes here are the defaults for a build without the daemon; the daemon sets
 * every max_entries from its bpf.* settings before load.
 */

/* Per-CPU, summed over CPUs by the daemon. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);			/* cgroup v2 id */
	__type(value, struct cgroup_hot_counts);
} cgroup_hot SEC(".maps");

/* Shared by all CPUs, added to atomically. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);			/* cgroup v2 id */
	__type(value, struct cgroup_rare_counts);
} cgroup_rare SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 32768);
	__type(key, struct cgroup_xstate_key);
	__type(value, __u64);
} cgroup_xstates SEC(".maps");

/*
 * Keyed by thread id.  A plain hash, not an LRU: a live vCPU's counters are
 * never evicted, and a full map is counted.  The daemon deletes an entry
 * once it has read its final values (VT_EXITED) or found the thread gone.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct vcpu_thread);
} vcpu_threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct guest_xstate_key);
	__type(value, __u64);
} guest_xstates SEC(".maps");

/* Names of removed cgroups; an LRU: the oldest are forgotten first, and the daemon counts ids it cannot name. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct removed_cgroup);
} removed_cgroups SEC(".maps");

/* Permission requests for dynamic features: rare, shared, added to atomically. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct xcomp_request_key);
	__type(value, __u64);
} xcomp_requests SEC(".maps");

/* The request a thread is in, from syscall entry to exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct xcomp_request_key);
} xcomp_pending SEC(".maps");

/* Updates refused because a map was full, indexed by enum map_id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAP__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} map_full SEC(".maps");

static __always_inline void count_full(__u32 map_id)
{
	__u64 *full = bpf_map_lookup_elem(&map_full, &map_id);

	if (full)
		__sync_fetch_and_add(full, 1);	/* programs on preemptible tracepoints share a CPU */
}

static __always_inline void *lookup_or_init(void *map, __u32 map_id,
					    const void *key, const void *init)
{
	void *val = bpf_map_lookup_elem(map, key);

	if (val)
		return val;
	if (bpf_map_update_elem(map, key, init, BPF_NOEXIST) == -E2BIG) {
		count_full(map_id);
		return NULL;
	}
	return bpf_map_lookup_elem(map, key);
}

static __always_inline void counter_inc(void *map, __u32 map_id, const void *key)
{
	static const __u64 zero;
	__u64 *count = lookup_or_init(map, map_id, key, &zero);

	if (count)
		*count += 1;
}

#endif /* MAPS_BPF_H */
