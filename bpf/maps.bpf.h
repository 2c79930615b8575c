/* maps.bpf.h: the exporter's BPF maps and the one way the programs update them. */
#ifndef MAPS_BPF_H
#define MAPS_BPF_H

#include "fpu_exporter.h"

#define E2BIG	7	/* errno.h is not for BPF */

/* Per-CPU counters, summed over CPUs by the daemon at scrape time. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_CGROUP_EVENTS);
	__type(key, struct cgroup_event_key);
	__type(value, __u64);
} cgroup_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, MAX_GUEST_XSTATES);
	__type(key, struct guest_xstate_key);
	__type(value, __u64);
} guest_xstates SEC(".maps");

/*
 * Keyed by thread id and only ever written by that thread, so plain
 * increments are exact without atomics.  LRU bounds it should exits be missed.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_VCPU_THREADS);
	__type(key, __u32);
	__type(value, struct vcpu_thread);
} vcpu_threads SEC(".maps");

/* Paths of removed cgroups, so events of a short-lived cgroup still get its name. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_REMOVED_CGROUPS);
	__type(key, __u64);
	__type(value, struct removed_cgroup);
} removed_cgroups SEC(".maps");

/* Updates refused because a map was full, indexed by enum map_id. */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAP__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} map_full SEC(".maps");

static __always_inline void *lookup_or_init(void *map, __u32 map_id,
					    const void *key, const void *init)
{
	void *val = bpf_map_lookup_elem(map, key);

	if (val)
		return val;
	if (bpf_map_update_elem(map, key, init, BPF_NOEXIST) == -E2BIG) {
		__u64 *full = bpf_map_lookup_elem(&map_full, &map_id);

		if (full)
			*full += 1;
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
