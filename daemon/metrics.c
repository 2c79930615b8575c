/* metrics.c: every metric family, and the collection: BPF maps read in batches (sync) into the series model. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroups.h"
#include "chain.h"
#include "expo.h"
#include "fpu_exporter.h"
#include "guests.h"
#include "history.h"
#include "log.h"
#include "machined.h"
#include "metrics.h"
#include "model.h"
#include "probes.h"
#include "version.h"
#include "xstate.h"

#define COUNTER(var, name, help) static const struct family var = { name, METRIC_COUNTER, help, 0 }
#define GAUGE(var, name, help) static const struct family var = { name, METRIC_GAUGE, help, 0 }
#define INFO(var, name, help) static const struct family var = { name, METRIC_GAUGE, help, 1 }

INFO(f_cgroup_info, "fpu_cgroup_info",
	"One per cgroup in the data series: its systemd unit, Kubernetes pod UID and container id.");
INFO(f_guest_info, "fpu_guest_info",
	"One per running VM: its process, cgroup, VMM and, where known, UUID.");
COUNTER(f_guest_loads, "fpu_guest_loads_total",
	"Guest FPU state loads (kvm_fpu load), per vCPU.");
COUNTER(f_guest_reloads, "fpu_guest_reloads_total",
	"KVM's fpu_reload: guest FPU state put back for the host (kvm_fpu unload), per vCPU.");
COUNTER(f_guest_component_saves, "fpu_guest_xstate_component_saves_total",
	"Saves of a guest's FPU image in which the XSAVE component was live (pkru excluded: "
	"the saved PKRU is the host's).");
INFO(f_guest_xcr0_info, "fpu_guest_xcr0_info",
	"One per vCPU thread: the guest's XCR0, the XCR0 bits its CPUID leaf 0xD allows (supported), "
	"and the XCR0 bits outside them but x87 (unsupported), as KVM held them at the last guest FPU load.");
COUNTER(f_guest_xstate_saves, "fpu_guest_xstate_saves_total",
	"Saves of a guest's FPU image, each counted once (at kvm_fpu unload, or at the context "
	"switch that saved it first), by the guest XSTATE_BV written, PKRU bit cleared.");
COUNTER(f_regs_activated, "fpu_regs_activated_total",
	"FPU register loads for tasks of the cgroup (x86_fpu_regs_activated).");
COUNTER(f_regs_deactivated, "fpu_regs_deactivated_total",
	"FPU register saves (XSAVE) at context switch for tasks of the cgroup, host and guest state; "
	"thread exits, which save nothing, are not counted.");
COUNTER(f_signal_frames, "fpu_signal_frames_total",
	"Signal frames set up with FPU state, for signals delivered to a handler.");
COUNTER(f_sigreturn_failures, "fpu_sigreturn_failures_total",
	"Signal-frame FPU restores that failed: bad_magic (no valid XSAVE magic, legacy restore), "
	"bad_frame (the frame could not be restored: SIGSEGV).");
COUNTER(f_sigreturn_restores, "fpu_sigreturn_restores_total",
	"FPU state restores from a signal frame (rt_sigreturn).");
COUNTER(f_task_copies, "fpu_task_copies_total",
	"FPU state copied to a new task at fork/clone (x86_fpu_copy_dst).");
COUNTER(f_task_drops, "fpu_task_drops_total",
	"Thread exits that dropped live FPU registers (x86_fpu_dropped); exits of threads whose "
	"state was already saved are not counted.");
COUNTER(f_component_saves, "fpu_xstate_component_saves_total",
	"Context-switch saves of host FPU state in which the XSAVE component was live.");
COUNTER(f_xstate_enlarged_saves, "fpu_xstate_enlarged_saves_total",
	"Context-switch saves of host FPU state into an fpstate enlarged for a dynamic feature (AMX).");
COUNTER(f_xcomp_requests, "fpu_xcomp_perm_requests_total",
	"arch_prctl() requests for permission to use a dynamic XSAVE feature, by kind (process: "
	"ARCH_REQ_XCOMP_PERM, guest: ARCH_REQ_XCOMP_GUEST_PERM), feature and result.");
COUNTER(f_xstate_saves, "fpu_xstate_saves_total",
	"Context-switch saves of host FPU state, by the XSTATE_BV just saved.");

INFO(f_build_info, "fpu_exporter_build_info",
	"Version of the exporter, of libbpf, and the running kernel.");
GAUGE(f_probe_attached, "fpu_exporter_probe_attached",
	"1 when the probe is attached, 0 when not (the log says why).");
COUNTER(f_bpf_run_seconds, "fpu_exporter_bpf_run_seconds_total",
	"Time spent in the probe's BPF program; counts only while kernel.bpf_stats_enabled=1.");
COUNTER(f_bpf_runs, "fpu_exporter_bpf_runs_total",
	"Runs of the probe's BPF program; counts only while kernel.bpf_stats_enabled=1.");
COUNTER(f_bpf_missed, "fpu_exporter_bpf_missed_runs_total",
	"Runs of the probe's BPF program the kernel skipped, one of it being in progress on that CPU: events not counted.");
GAUGE(f_map_entries, "fpu_exporter_map_entries",
	"Entries in the BPF map at the last collection.");
GAUGE(f_map_capacity, "fpu_exporter_map_capacity",
	"Maximum entries of the BPF map (bpf.* settings).");
GAUGE(f_map_memory, "fpu_exporter_map_memory_bytes",
	"Kernel memory of the BPF map, as the kernel accounts it (fdinfo memlock).");
COUNTER(f_map_full, "fpu_exporter_map_full_total",
	"Events not counted because the BPF map was full.");
COUNTER(f_cgroups_unnamed, "fpu_exporter_cgroups_unnamed_total",
	"Map entries dropped because their cgroup could not be named within the grace period "
	"(outside cgroups.root, or removed before its name was recorded).");
COUNTER(f_cgroups_unreadable, "fpu_exporter_cgroup_dirs_unreadable_total",
	"cgroup directories a scan of the hierarchy could not open.");
COUNTER(f_proc_errors, "fpu_exporter_proc_errors_total",
	"Reads of /proc that failed for another reason than the process being gone; "
	"the entries were kept for the next collection.");
GAUGE(f_series, "fpu_exporter_series",
	"Series in the model (the data families).");
COUNTER(f_series_overflow, "fpu_exporter_series_overflow_total",
	"Series not made because series.max_per_family was reached: counters went to the family's "
	"overflow series, info series were dropped.");
GAUGE(f_series_folded, "fpu_exporter_series_folded",
	"Counters (per cgroup, thread or VM) that go to an overflow series now (series.max_per_family).");
GAUGE(f_scrape_duration, "fpu_exporter_scrape_duration_seconds",
	"Time this scrape took to read the maps, update the model and render the data series.");
COUNTER(f_scrapes, "fpu_exporter_scrapes_total",
	"Scrapes served, by exposition format (text 0.0.4 or OpenMetrics).");
COUNTER(f_cpu, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.");
GAUGE(f_rss, "process_resident_memory_bytes", "Resident memory size in bytes.");
GAUGE(f_vsz, "process_virtual_memory_bytes", "Virtual memory size in bytes.");
GAUGE(f_start, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.");
GAUGE(f_fds, "process_open_fds", "Number of open file descriptors.");
GAUGE(f_max_fds, "process_max_fds", "Maximum number of open file descriptors.");

/* The data families, in the order they are rendered (by name). */
static const struct family *const data_families[] = {
	&f_cgroup_info, &f_guest_info, &f_guest_loads, &f_guest_reloads, &f_guest_component_saves,
	&f_guest_xcr0_info, &f_guest_xstate_saves, &f_regs_activated, &f_regs_deactivated, &f_signal_frames,
	&f_sigreturn_failures, &f_sigreturn_restores, &f_task_copies, &f_task_drops,
	&f_xcomp_requests, &f_component_saves, &f_xstate_enlarged_saves, &f_xstate_saves,
};

#define PKRU_BIT 9

/*
 * What a source is: a VM's BPF map entry (a vCPU thread, a guest XSTATE_BV)
 * or a VM itself (its info series), with the counts last read from it and the
 * series it adds to.  A cgroup's entries are one record (struct cg_src).
 */
enum src_kind { SRC_VCPU, SRC_GUEST_XSTATE, SRC_GUEST, SRC_XCR0 };

/* Slot layout per kind: the counters first (by their index in the map value), then the rest. */
#define VCPU_LOADS	0
#define VCPU_RELOADS	1
#define GX_SAVES	0	/* SRC_GUEST_XSTATE, then one per component */

struct source {
	struct source *next;
	uint64_t k1, k2;
	struct owner *owner;
	char *ident;		/* SRC_VCPU: "domain/vcpu" when last mapped (SRC_XCR0: its owner's key says) */
	unsigned int seen;	/* the collection that last read it */
	unsigned int gen;	/* configuration generation of the mapping */
	unsigned int name_gen;	/* its VM's naming generation at mapping */
	unsigned char kind;
	unsigned char mapped;	/* slots are for the current mapping */
	unsigned char ncounters, nslots;
	/* ncounters counts last read, then nslots series: one allocation, sized by kind */
	uint64_t prev[];
};

/*
 * A cgroup's entries: in cgroup_hot and cgroup_rare (its counters), and its
 * pairs, one per entry in cgroup_xstates (an XSTATE_BV) and xcomp_requests.
 * The pairs, then the series of the XSAVE components its XSTATE_BVs name (in
 * bit order), are one allocation beside the record.
 */
#define CG_COUNTERS	(HOT__COUNT + RARE__COUNT)	/* cgroup_hot's, then cgroup_rare's */
#define CG_RARE_FIRST	HOT__COUNT
#define CG_INFO		CG_COUNTERS		/* slots: the counters', then fpu_cgroup_info */
#define CG_ENLARGED	(CG_COUNTERS + 1)	/* fpu_xstate_enlarged_saves_total */
#define CG_SLOTS	(CG_COUNTERS + 2)

/* The maps a cgroup was read from in this collection (read_maps), and kept in (kept_maps). */
#define READ_HOT	1
#define READ_RARE	2

/* Where a pair is in this collection. */
enum { PAIR_UNREAD, PAIR_KEPT, PAIR_DELETED };

struct cg_pair {
	uint64_t k2;		/* the XSTATE_BV (| XSTATE_ENLARGED), or the request's key after the id */
	uint64_t prev;
	series_id own;		/* fpu_xstate_saves_total{xfeatures} or fpu_xcomp_perm_requests_total */
	unsigned char xcomp;	/* an xcomp_requests entry, else cgroup_xstates */
	unsigned char read;	/* PAIR_* */
};

/* Not known yet, and no longer worth waiting for: its entries are dropped, counted. */
#define CG_UNNAMED	((enum cg_state)255)

struct cg_src {
	struct cg_src *next;	/* first: chain.h */
	uint64_t id;
	struct owner *owner;
	unsigned int gen;	/* configuration generation of the mapping */
	unsigned int resolved_in;	/* the collection state is for */
	unsigned int unknown_scan;	/* the scan generation when it was first unknown */
	unsigned int tried_scan;	/* the generation of its last lookup, one rescan each */
	unsigned int alive_scan;	/* 1 + the scan generation it was last found alive in */
	uint32_t unknown_since;		/* when it was first unknown (time_t, truncated) */
	unsigned char state;	/* enum cg_state or CG_UNNAMED, in collection resolved_in */
	unsigned char mapped;	/* slots are for the current mapping */
	unsigned char read_maps, kept_maps;	/* READ_* */
	unsigned short npairs;
	unsigned char ncomps;
	uint64_t comp_mask;	/* the components with a place in comps */
	uint64_t prev[CG_COUNTERS];
	series_id slots[CG_SLOTS];
	void *tail;		/* npairs struct cg_pair, then ncomps series_id: grown as they come */
};

/* The series a source adds to, after its counts. */
static series_id *src_slots(struct source *s)
{
	return (series_id *)&s->prev[s->ncounters];
}

#define SRC_BUCKETS_MIN 1024

static struct {
	time_t grace;
	struct cgroup_filter *filter;
	struct model *model;
	unsigned int gen;	/* bumped by every reload */
	unsigned int sync;	/* collections so far */
	int ncpus;
	struct source **buckets;
	size_t nbuckets, nsources;
	struct cg_src **cg_buckets;	/* the cgroup records, by id */
	size_t cg_nbuckets, ncgroups;
	/* one map's contents, read in batches */
	void *keys;
	uint64_t *vals;
	uint64_t *sums;		/* the values summed over CPUs, in place of vals */
	size_t cap;		/* entries, for the map being read */
	size_t keys_bytes, vals_bytes;
	int no_batch;
	struct map_stat maps[MAP__COUNT];
	unsigned long long unnamed, proc_errors;
	char kernel[65];
	double boot_time;	/* for process_start_time_seconds */
	unsigned long long scrapes[2];	/* by enum expo_format */
	long ticks;
	double last_duration;
	size_t last_len;	/* of the last text held whole */
} m;

/* ---- the source table ---- */

static size_t src_bucket(unsigned char kind, uint64_t k1, uint64_t k2, size_t nb)
{
	uint64_t h = (k1 * 0x9e3779b97f4a7c15ull) ^ (k2 * 0xc2b2ae3d27d4eb4full) ^ kind;

	h ^= h >> 29;
	return (size_t)(h * 0xbf58476d1ce4e5b9ull >> 20) & (nb - 1);
}

static size_t src_index(const void *e, size_t nb)
{
	const struct source *s = e;

	return src_bucket(s->kind, s->k1, s->k2, nb);
}

static void src_fit(void)
{
	chain_fit((void ***)&m.buckets, &m.nbuckets, m.nsources, SRC_BUCKETS_MIN, src_index);
}

static unsigned int popcount64(uint64_t x)
{
	return (unsigned int)__builtin_popcountll(x);
}

/* Counters and series of a source, fixed by its kind and key. */
static void src_shape(unsigned char kind, uint64_t k2, unsigned int *ncounters, unsigned int *nslots)
{
	switch (kind) {
	case SRC_VCPU:
		*ncounters = 2;
		*nslots = 2;
		break;
	case SRC_GUEST_XSTATE:
		*ncounters = 1;
		*nslots = 1 + popcount64(k2 & ~(1ull << PKRU_BIT));
		break;
	default:		/* SRC_GUEST, SRC_XCR0: one info series */
		*ncounters = 0;
		*nslots = 1;
	}
}

static struct source *src_get(unsigned char kind, uint64_t k1, uint64_t k2)
{
	size_t i = src_bucket(kind, k1, k2, m.nbuckets);
	unsigned int nc, ns;
	struct source *s;

	for (s = m.buckets[i]; s; s = s->next)
		if (s->kind == kind && s->k1 == k1 && s->k2 == k2)
			return s;
	src_fit();
	i = src_bucket(kind, k1, k2, m.nbuckets);
	src_shape(kind, k2, &nc, &ns);
	s = xcalloc(1, sizeof(*s) + nc * sizeof(s->prev[0]) + ns * sizeof(series_id));
	s->ncounters = (unsigned char)nc;
	s->nslots = (unsigned char)ns;
	s->kind = kind;
	s->k1 = k1;
	s->k2 = k2;
	s->next = m.buckets[i];
	m.buckets[i] = s;
	m.nsources++;
	return s;
}

/* Lets go of the series and owner: their counts stay where they were added. */
static void src_unmap(struct source *s)
{
	series_id *slots = src_slots(s);

	for (unsigned int i = 0; i < s->nslots; i++) {
		model_series_put(m.model, slots[i]);
		slots[i] = 0;
	}
	model_owner_put(m.model, s->owner);
	s->owner = NULL;
	s->mapped = 0;
}

/*
 * A source mapped under other labels than before (a VM renamed, a cgroup
 * label changed by a reload) brings its whole count to its new series; under
 * the same labels it goes on adding what it grew by.  The labels are the
 * owner's key, and for a vCPU thread its vcpu label too (ident).
 */
static void src_map(struct source *s, const char *ident, struct owner *o)
{
	int new_ident = ident && (!s->ident || strcmp(s->ident, ident));

	if (s->owner != o || new_ident)
		memset(s->prev, 0, s->ncounters * sizeof(s->prev[0]));
	if (new_ident) {
		free(s->ident);
		s->ident = xstrdup(ident);
	}
	src_unmap(s);
	s->owner = o;
	s->mapped = 1;
	s->gen = m.gen;
}

/* Frees sources the last collection did not read: their entries are gone. */
static void src_sweep(void)
{
	for (size_t i = 0; i < m.nbuckets; i++) {
		struct source **pp = &m.buckets[i], *s;

		while ((s = *pp)) {
			if (s->seen == m.sync) {
				pp = &s->next;
				continue;
			}
			*pp = s->next;
			src_unmap(s);
			free(s->ident);
			free(s);
			m.nsources--;
		}
	}
	src_fit();
}

/* Adds what a counter grew by since the last read to its series. */
static void add_delta(struct source *s, unsigned int counter, uint64_t cur)
{
	uint64_t d = cur >= s->prev[counter] ? cur - s->prev[counter] : cur;
	series_id *slots = src_slots(s);

	s->prev[counter] = cur;
	if (d && s->mapped && slots[counter])
		model_add(m.model, slots[counter], d);
}

/* ---- reading maps ---- */

static size_t value_words(size_t value_size, int percpu)
{
	return (value_size + 7) / 8 * (percpu ? (size_t)m.ncpus : 1);
}

/* Room for n entries of this map's key and value sizes (the buffers serve every map). */
static void ensure_room(size_t n, size_t key_size, size_t words)
{
	if (n * key_size > m.keys_bytes) {
		m.keys_bytes = n * key_size;
		m.keys = xrealloc(m.keys, m.keys_bytes);
	}
	if (n * words * 8 > m.vals_bytes) {
		m.vals_bytes = n * words * 8;
		m.vals = xrealloc(m.vals, m.vals_bytes);
		m.sums = m.vals;
	}
	m.cap = n;
}

/*
 * Reads every entry of a map into m.keys and m.sums (each value's u64 words,
 * summed over CPUs for a per-CPU map).  Batches where the kernel has them;
 * else a key walk, in which a key may come twice (the sync ignores the
 * second).  Returns the number of entries.
 */
static size_t map_read(int fd, size_t key_size, size_t value_size, int percpu)
{
	size_t words = value_words(value_size, percpu), nw = (value_size + 7) / 8, n = 0;
	__u64 token = 0;
	int first = 1;

	ensure_room(m.cap > 1024 ? m.cap : 1024, key_size, words);
	while (!m.no_batch) {
		__u32 count;
		int err;

		if (m.cap - n < 256)
			ensure_room(m.cap * 2, key_size, words);
		count = (__u32)(m.cap - n);
		err = bpf_map_lookup_batch(fd, first ? NULL : &token, &token,
					   (char *)m.keys + n * key_size,
					   (char *)m.vals + n * words * 8, &count, NULL);
		first = 0;
		n += count;
		if (err == 0)
			continue;
		if (errno == ENOENT)
			goto sum;
		if (errno == ENOSPC) {	/* a bucket larger than the room left */
			ensure_room(m.cap * 2, key_size, words);
			continue;
		}
		log_info("batched map reads unavailable (%s): reading entry by entry", strerror(errno));
		m.no_batch = 1;
		n = 0;
	}
	for (void *prev = NULL;; n++) {
		if (n == m.cap)
			ensure_room(m.cap * 2, key_size, words);
		if (bpf_map_get_next_key(fd, prev, (char *)m.keys + n * key_size))
			break;
		prev = (char *)m.keys + n * key_size;
		if (bpf_map_lookup_elem(fd, prev, (char *)m.vals + n * words * 8))
			n--;	/* deleted meanwhile */
	}
sum:
	/*
	 * In place: entry i's sums land at or before its own values, over
	 * entries already summed (or, for entry 0 and a shared map, on the
	 * words just read).
	 */
	for (size_t i = 0; percpu && i < n; i++) {
		const uint64_t *v = m.vals + i * words;

		for (size_t w = 0; w < nw; w++) {
			uint64_t sum = 0;

			for (size_t c = 0; c < (size_t)m.ncpus; c++)
				sum += v[c * nw + w];
			m.sums[i * nw + w] = sum;
		}
	}
	return n;
}

static void map_delete(int fd, const void *key)
{
	if (bpf_map_delete_elem(fd, key) && errno != ENOENT)
		log_warn("deleting a BPF map entry: %s", strerror(errno));
}

/* ---- cgroups ---- */

/* A series of the cgroup's (its owner's label first), with one more label or none. */
static series_id cg_series(struct cg_src *r, const struct family *f, const char *k2, const char *v2)
{
	return model_series_under(m.model, f, r->owner, k2 ? 1 : 0, &(struct label){ k2, v2 });
}

/* The series of a cgroup counter: guest saves are context-switch saves too. */
static series_id make_cg(struct cg_src *r, unsigned int counter)
{
	switch (counter) {
	case HOT_REGS_ACTIVATED: return cg_series(r, &f_regs_activated, NULL, NULL);
	case HOT_GUEST_SAVES: return cg_series(r, &f_regs_deactivated, NULL, NULL);
	case CG_RARE_FIRST + RARE_SIGNAL_FRAMES: return cg_series(r, &f_signal_frames, NULL, NULL);
	case CG_RARE_FIRST + RARE_SIGRETURNS: return cg_series(r, &f_sigreturn_restores, NULL, NULL);
	case CG_RARE_FIRST + RARE_SIGRETURN_BAD_MAGIC:
		return cg_series(r, &f_sigreturn_failures, "reason", "bad_magic");
	case CG_RARE_FIRST + RARE_SIGRETURN_BAD_FRAME:
		return cg_series(r, &f_sigreturn_failures, "reason", "bad_frame");
	case CG_RARE_FIRST + RARE_TASK_COPIES: return cg_series(r, &f_task_copies, NULL, NULL);
	default: return cg_series(r, &f_task_drops, NULL, NULL);
	}
}

static struct cg_pair *cg_pairs(struct cg_src *r)
{
	return (struct cg_pair *)r->tail;
}

/* The component series, in bit order of comp_mask. */
static series_id *cg_comps(struct cg_src *r)
{
	return (series_id *)(cg_pairs(r) + r->npairs);
}

static size_t cg_index(const void *e, size_t nb)
{
	return chain_index_u64(((const struct cg_src *)e)->id, nb);
}

static void cg_fit(void)
{
	chain_fit((void ***)&m.cg_buckets, &m.cg_nbuckets, m.ncgroups, SRC_BUCKETS_MIN, cg_index);
}

/* The record of a cgroup id, made on first use. */
static struct cg_src *cg_get(uint64_t id)
{
	struct cg_src *r;

	for (r = m.cg_buckets[chain_index_u64(id, m.cg_nbuckets)]; r; r = r->next)
		if (r->id == id)
			return r;
	cg_fit();
	r = xcalloc(1, sizeof(*r));
	r->id = id;
	r->next = m.cg_buckets[chain_index_u64(id, m.cg_nbuckets)];
	m.cg_buckets[chain_index_u64(id, m.cg_nbuckets)] = r;
	m.ncgroups++;
	return r;
}

/* The pair (xcomp, k2) of r, made on first use, with a place for each component its XSTATE_BV names. */
static struct cg_pair *cg_pair(struct cg_src *r, int xcomp, uint64_t k2)
{
	uint64_t add = xcomp ? 0 : k2 & ~XSTATE_ENLARGED & ~r->comp_mask;
	unsigned int n = popcount64(add), old = r->ncomps;
	struct cg_pair *p = cg_pairs(r);
	series_id *comps;

	for (unsigned int i = 0; i < r->npairs; i++)
		if (p[i].k2 == k2 && p[i].xcomp == xcomp)
			return &p[i];
	r->tail = xrealloc(r->tail, (r->npairs + 1u) * sizeof(struct cg_pair) + (old + n) * sizeof(series_id));
	/* the components move up by one pair, taking the new ones' places in bit order */
	comps = (series_id *)(cg_pairs(r) + r->npairs + 1);
	memmove(comps, cg_comps(r), old * sizeof(*comps));
	for (unsigned int bit = 0, i = 0; bit < 64 && n; bit++) {
		if (r->comp_mask >> bit & 1) {
			i++;
		} else if (add >> bit & 1) {
			memmove(&comps[i + 1], &comps[i], (r->ncomps - i) * sizeof(*comps));
			comps[i++] = 0;
			r->ncomps++;
			r->comp_mask |= 1ull << bit;
			n--;
		}
	}
	p = &cg_pairs(r)[r->npairs++];
	memset(p, 0, sizeof(*p));
	p->k2 = k2;
	p->xcomp = (unsigned char)xcomp;
	return p;
}

/* Lets go of every series and the owner: their counts stay where they were added. */
static void cg_unmap(struct cg_src *r)
{
	for (unsigned int i = 0; i < CG_SLOTS; i++) {
		model_series_put(m.model, r->slots[i]);
		r->slots[i] = 0;
	}
	for (unsigned int i = 0; i < r->npairs; i++) {
		model_series_put(m.model, cg_pairs(r)[i].own);
		cg_pairs(r)[i].own = 0;
	}
	for (unsigned int i = 0; i < r->ncomps; i++) {
		model_series_put(m.model, cg_comps(r)[i]);
		cg_comps(r)[i] = 0;
	}
	model_owner_put(m.model, r->owner);
	r->owner = NULL;
	r->mapped = 0;
}

/*
 * Maps a cgroup to its label's owner and info series; its other series are
 * made as its counts grow.  Under another label than before (a reload) its
 * whole count goes to the new series.  0 when mapped, -1 when the cgroup is
 * not exported.
 */
static int cg_map(struct cg_src *r, const char *path)
{
	char buf[PATH_MAX];
	const char *label = cgroups_label(m.filter, path, buf, sizeof(buf));
	struct owner *o = label[0] ? model_owner_label(m.model, &(struct label){ "cgroup", label }, m.grace) : NULL;
	struct cgroup_desc d;

	if (r->owner != o) {
		memset(r->prev, 0, sizeof(r->prev));
		for (unsigned int i = 0; i < r->npairs; i++)
			cg_pairs(r)[i].prev = 0;
	}
	cg_unmap(r);
	r->gen = m.gen;
	if (!o)		/* excluded */
		return -1;
	r->owner = o;
	r->mapped = 1;
	cgroups_describe(label, &d);
	{
		struct label l[] = { { "unit", d.unit }, { "pod_uid", d.pod_uid },
				     { "container_id", d.container_id } };

		r->slots[CG_INFO] = model_series_under(m.model, &f_cgroup_info, o, 3, l);
	}
	return 0;
}

/*
 * Resolves a cgroup's id, once a collection; returns its state.  An id not
 * known yet is kept as it is (its counts are added once it is named); one
 * that stays unknown through the grace period and a complete scan is
 * CG_UNNAMED: its entries are dropped, counted.
 */
static enum cg_state cg_resolve(struct cg_src *r, time_t now)
{
	const char *path;
	enum cg_state st;

	if (r->resolved_in == m.sync)
		return (enum cg_state)r->state;
	r->resolved_in = m.sync;
	/*
	 * Only a complete scan finds a cgroup gone: one alive since the last
	 * one, under the same configuration, is alive still (no lookup).
	 */
	if (r->alive_scan == cgroups_scan_generation() + 1 && r->gen == m.gen) {
		if (r->owner)
			model_owner_alive(m.model, r->owner, now);
		return (enum cg_state)(r->state = CG_ALIVE);
	}
	st = cgroups_lookup(r->id, !r->unknown_since || r->tried_scan != cgroups_scan_generation(), &path);
	if (st == CG_UNKNOWN) {
		if (!r->unknown_since) {
			r->unknown_since = (uint32_t)now;
			r->unknown_scan = cgroups_scan_generation();
		} else if ((uint32_t)now - r->unknown_since >= m.grace &&
			   cgroups_scan_generation() != r->unknown_scan) {
			st = CG_UNNAMED;
		}
		r->tried_scan = cgroups_scan_generation();
		return (enum cg_state)(r->state = (unsigned char)st);
	}
	r->unknown_since = 0;
	r->alive_scan = st == CG_ALIVE ? cgroups_scan_generation() + 1 : 0;
	/* a cgroup's path never changes: its labels change only with the configuration */
	if (r->gen != m.gen)
		cg_map(r, path);
	if (r->owner && st == CG_ALIVE)
		model_owner_alive(m.model, r->owner, now);
	return (enum cg_state)(r->state = (unsigned char)st);
}

/*
 * Reads an entry of a cgroup: 1 to add its counts, 0 not (unknown yet, or
 * its entry deleted here: unnamed for too long).
 */
static int cg_entry_read(enum cg_state st, const void *key, int fd)
{
	if (st == CG_UNNAMED) {
		map_delete(fd, key);
		m.unnamed++;
		return 0;
	}
	return st != CG_UNKNOWN;
}

/* After its counts were added: a cgroup gone for the grace period leaves the map. */
static int cg_entry_retire(const struct cg_src *r, enum cg_state st, const void *key, int fd, time_t now)
{
	if (st == CG_GONE && cgroups_gone_for(r->id, now, m.grace)) {
		map_delete(fd, key);
		return 1;
	}
	return 0;
}

/* Adds what a counter of the cgroup grew by since the last read to its series, made on first growth. */
static void cg_add(struct cg_src *r, unsigned int counter, uint64_t cur)
{
	uint64_t d = cur >= r->prev[counter] ? cur - r->prev[counter] : cur;

	r->prev[counter] = cur;
	if (!d || !r->mapped)
		return;
	if (!r->slots[counter])
		r->slots[counter] = make_cg(r, counter);
	model_add(m.model, r->slots[counter], d);
}

/*
 * The entries a cgroup has in cgroup_hot (per-CPU) and cgroup_rare (shared):
 * n counters each, the record's counters from first on.
 */
static void sync_cgroup_counts(enum map_id id, unsigned char read, int fd, unsigned int first,
			       unsigned int n, int percpu, time_t now)
{
	size_t entries = map_read(fd, sizeof(__u64), n * sizeof(__u64), percpu);
	const __u64 *ids = m.keys;

	m.maps[id].entries = entries;
	for (size_t i = 0; i < entries; i++) {
		struct cg_src *r = cg_get(ids[i]);
		enum cg_state st;

		if (r->read_maps & read)
			continue;	/* the key walk gave it twice */
		r->read_maps |= read;
		st = cg_resolve(r, now);
		if (!cg_entry_read(st, &ids[i], fd)) {
			if (st == CG_UNKNOWN)
				r->kept_maps |= read;
			continue;
		}
		for (unsigned int c = 0; c < n; c++)
			cg_add(r, first + c, m.sums[i * n + c]);
		if (!cg_entry_retire(r, st, &ids[i], fd, now))
			r->kept_maps |= read;
	}
}

/* An XSTATE_BV's saves: its own series, the cgroup's saves, each live component's, enlarged ones'. */
static void cg_add_xstate(struct cg_src *r, struct cg_pair *p, uint64_t d)
{
	uint64_t bv = p->k2 & ~XSTATE_ENLARGED;
	char xf[19], scratch[8];

	if (!p->own) {
		xstate_format(bv, xf);
		p->own = cg_series(r, &f_xstate_saves, "xfeatures", xf);
	}
	model_add(m.model, p->own, d);
	if (!r->slots[HOT_GUEST_SAVES])
		r->slots[HOT_GUEST_SAVES] = make_cg(r, HOT_GUEST_SAVES);
	model_add(m.model, r->slots[HOT_GUEST_SAVES], d);
	for (unsigned int bit = 0, i = 0; bit < 64; bit++) {
		if (!(r->comp_mask >> bit & 1))
			continue;
		if (bv >> bit & 1) {
			series_id *c = &cg_comps(r)[i];

			if (!*c)
				*c = cg_series(r, &f_component_saves, "component",
					       xstate_component_name(bit, scratch));
			model_add(m.model, *c, d);
		}
		i++;
	}
	if (p->k2 & XSTATE_ENLARGED) {
		if (!r->slots[CG_ENLARGED])
			r->slots[CG_ENLARGED] = cg_series(r, &f_xstate_enlarged_saves, NULL, NULL);
		model_add(m.model, r->slots[CG_ENLARGED], d);
	}
}

static void cg_add_xcomp(struct cg_src *r, struct cg_pair *p, uint64_t d)
{
	if (!p->own) {
		struct xcomp_request_key k = { .cgroup_id = r->id };
		char scratch[8];

		memcpy((char *)&k + sizeof(k.cgroup_id), &p->k2, sizeof(p->k2));
		struct label l[] = { { "kind", k.guest ? "guest" : "process" },
				     { "feature", xstate_component_name(k.feature & 63, scratch) },
				     { "result", k.refused ? "refused" : "granted" } };

		p->own = model_series_under(m.model, &f_xcomp_requests, r->owner, 3, l);
	}
	model_add(m.model, p->own, d);
}

/*
 * Entries keyed by a cgroup id and one more word, with one counter: saves by
 * XSTATE_BV (per-CPU) and dynamic-feature permission requests (shared).
 */
static void sync_cgroup_pairs(enum map_id id, int xcomp, int fd, int percpu, time_t now)
{
	size_t n = map_read(fd, 2 * sizeof(__u64), sizeof(__u64), percpu);
	const __u64 *keys = m.keys;

	m.maps[id].entries = n;
	for (size_t i = 0; i < n; i++) {
		const __u64 *key = &keys[2 * i];
		struct cg_src *r = cg_get(key[0]);
		struct cg_pair *p = cg_pair(r, xcomp, key[1]);
		enum cg_state st;
		uint64_t d;

		if (p->read)
			continue;	/* the key walk gave it twice */
		p->read = PAIR_DELETED;
		st = cg_resolve(r, now);
		if (!cg_entry_read(st, key, fd)) {
			if (st == CG_UNKNOWN)
				p->read = PAIR_KEPT;
			continue;
		}
		d = m.sums[i] >= p->prev ? m.sums[i] - p->prev : m.sums[i];
		p->prev = m.sums[i];
		if (d && r->mapped)
			(xcomp ? cg_add_xcomp : cg_add_xstate)(r, p, d);
		if (!cg_entry_retire(r, st, key, fd, now))
			p->read = PAIR_KEPT;
	}
}

/*
 * After a collection: a pair whose entry is gone leaves its record, counts
 * of a map the cgroup has no entry in start over, and a cgroup with no
 * entry left is dropped.
 */
static void cg_sweep(void)
{
	for (size_t b = 0; b < m.cg_nbuckets; b++) {
		struct cg_src **pp = &m.cg_buckets[b], *r;

		while ((r = *pp)) {
			struct cg_pair *p = cg_pairs(r);
			unsigned int kept = 0;

			for (unsigned int i = 0; i < r->npairs; i++) {
				if (p[i].read != PAIR_KEPT) {
					model_series_put(m.model, p[i].own);
					continue;
				}
				p[i].read = PAIR_UNREAD;
				p[kept++] = p[i];
			}
			if (kept < r->npairs) {	/* the components follow the pairs */
				memmove(&p[kept], &p[r->npairs], r->ncomps * sizeof(series_id));
				r->npairs = (unsigned short)kept;
			}
			if (!(r->kept_maps & READ_HOT))
				memset(r->prev, 0, HOT__COUNT * sizeof(r->prev[0]));
			if (!(r->kept_maps & READ_RARE))
				memset(&r->prev[CG_RARE_FIRST], 0, RARE__COUNT * sizeof(r->prev[0]));
			if (r->npairs || r->kept_maps) {
				r->read_maps = r->kept_maps = 0;
				pp = &r->next;
				continue;
			}
			*pp = r->next;
			cg_unmap(r);
			free(r->tail);
			free(r);
			m.ncgroups--;
		}
	}
	cg_fit();
}

/* ---- guests ---- */

/* The guest component series of an XSTATE_BV into slots[first...], after label. */
static void component_series(struct source *s, const struct family *f, const struct label *label,
			     uint64_t xf, unsigned int first)
{
	char scratch[8];

	for (unsigned int bit = 0, i = first; bit < 64; bit++) {
		if (!(xf >> bit & 1))
			continue;
		struct label comp = { "component", xstate_component_name(bit, scratch) };

		src_slots(s)[i++] = model_series(m.model, f, s->owner, 2, (struct label[]){ *label, comp });
	}
}

/* A VM under its current name: renamed, its old series leave at once. */
static struct owner *guest_owner(const struct guest *g)
{
	char *key = xasprintf("g%d:%llu:%s", (int)g->pid, g->start_time, g->domain);
	struct owner *o = model_owner(m.model, key, 0);

	free(key);
	return o;
}

/* The guest of a tgid: 1 found, 0 gone (proof), -1 unknown for now (a transient /proc error). */
static int guest_of(__u32 tgid, const struct guest **g)
{
	int err = guests_lookup((pid_t)tgid, g);

	if (err == 0)
		return 1;
	if (err == -ENOENT)
		return 0;
	m.proc_errors++;
	log_debug("/proc/%u: %s; kept for the next collection", tgid, strerror(-err));
	return -1;
}

/* A vCPU thread's vcpu label (never holds a '/'), from its ident; NULL before it was mapped. */
static const char *src_vcpu(const struct source *s)
{
	const char *p = s->ident ? strrchr(s->ident, '/') : NULL;

	return p ? p + 1 : NULL;
}

static void vcpu_map(struct source *s, const struct guest *g, const char *vcpu_label)
{
	char vcpu[16], *ident;

	snprintf(vcpu, sizeof(vcpu), "%s", vcpu_label);	/* it may be in the ident replaced here */
	ident = xasprintf("%s/%s", g->domain, vcpu);
	src_map(s, ident, guest_owner(g));
	free(ident);
	s->name_gen = g->name_gen;

	struct label l[] = { { "domain", g->domain }, { "vcpu", vcpu } };

	src_slots(s)[VCPU_LOADS] = model_series(m.model, &f_guest_loads, s->owner, 2, l);
	src_slots(s)[VCPU_RELOADS] = model_series(m.model, &f_guest_reloads, s->owner, 2, l);
}

/*
 * The fpu_guest_xcr0_info of a vCPU thread.  Its owner is keyed by the
 * values, with no grace: when KVM shows a new XCR0 the source moves to a new
 * series and the old one, held by nothing and never alive again, is pruned
 * in this collection.  A thread that exits takes its series with it.
 */
static void sync_vcpu_xcr0(__u32 tid, const struct vcpu_thread *v, const struct guest *g,
			   const char *vcpu, time_t now)
{
	char xcr0[19], sup[19] = "", unsup[19] = "", *key;
	struct source *s;

	if (!(v->flags & VT_KVM_XCR0))
		return;		/* not seen: swept, with its series */
	s = src_get(SRC_XCR0, tid, 0);
	s->seen = m.sync;
	xstate_format(v->xcr0, xcr0);
	if (v->flags & VT_KVM_SUPPORTED) {
		xstate_format(v->supported_xcr0, sup);
		/* x87 is always allowed (KVM's __kvm_set_xcr()), CPUID or not */
		xstate_format(v->xcr0 & ~(v->supported_xcr0 | 1), unsup);
	}
	key = xasprintf("x%d:%llu:%s/%s=%s/%s", (int)g->pid, g->start_time, g->domain, vcpu, xcr0, sup);
	if (!s->mapped || s->gen != m.gen || strcmp(model_owner_key(s->owner), key)) {
		struct label l[] = { { "domain", g->domain }, { "vcpu", vcpu }, { "xcr0", xcr0 },
				     { "supported", sup }, { "unsupported", unsup } };

		src_map(s, NULL, model_owner(m.model, key, 0));
		src_slots(s)[0] = model_series(m.model, &f_guest_xcr0_info, s->owner, 5, l);
	}
	model_owner_alive(m.model, s->owner, now);
	free(key);
}

/* A collection that could not look at the thread keeps its XCR0 series as they were. */
static void vcpu_xcr0_keep(__u32 tid)
{
	src_get(SRC_XCR0, tid, 0)->seen = m.sync;
}

static void sync_vcpu_threads(time_t now)
{
	int fd = probes_maps()->vcpu_threads;
	size_t n = map_read(fd, sizeof(__u32), sizeof(struct vcpu_thread), 0);
	const __u32 *tids = m.keys;
	const struct vcpu_thread *vals = (const void *)m.vals;

	m.maps[MAP_VCPU_THREADS].entries = n;
	for (size_t i = 0; i < n; i++) {
		const struct vcpu_thread *v = &vals[i];
		struct source *s = src_get(SRC_VCPU, tids[i], 0);
		const struct guest *g;
		char vcpu[16];
		int r, err;

		if (s->seen == m.sync)
			continue;
		s->seen = m.sync;
		r = guest_of(v->tgid, &g);
		if (r == 0) {	/* the VM is gone, and its series with it */
			map_delete(fd, &tids[i]);
			s->seen = m.sync - 1;
			continue;
		}
		if (r < 0) {
			vcpu_xcr0_keep(tids[i]);
			continue;
		}
		/*
		 * KVM's own index when the BPF side read it; else the thread's
		 * name.  A thread that ran no load yet is labelled at the next
		 * collection (kvm_fpu reads the identity before it counts a load).
		 */
		if (v->flags & VT_KVM_ID) {
			snprintf(vcpu, sizeof(vcpu), "%u", v->vcpu_idx);
			err = 0;
		} else if (!v->loads && !s->mapped && !(v->flags & VT_EXITED)) {
			continue;
		/* a vCPU keeps its index; other threads are looked at again (QEMU names them late) */
		} else if (src_vcpu(s) && strcmp(src_vcpu(s), "none")) {
			snprintf(vcpu, sizeof(vcpu), "%s", src_vcpu(s));
			err = 0;
		} else {
			err = guests_vcpu_label(g->pid, (pid_t)tids[i], vcpu, sizeof(vcpu));
		}
		if (err < 0 && err != -ENOENT) {
			m.proc_errors++;
			vcpu_xcr0_keep(tids[i]);
			continue;
		}
		if (err == -ENOENT && !s->mapped)
			snprintf(vcpu, sizeof(vcpu), "none");	/* gone before its name was read */
		if (!s->mapped || s->gen != m.gen || s->name_gen != g->name_gen ||
		    (err == 0 && strcmp(src_vcpu(s), vcpu)))
			vcpu_map(s, g, err == 0 || !src_vcpu(s) ? vcpu : src_vcpu(s));
		add_delta(s, VCPU_LOADS, v->loads);
		add_delta(s, VCPU_RELOADS, v->reloads);
		if (s->owner)
			model_owner_alive(m.model, s->owner, now);
		if (s->mapped && src_vcpu(s) && !(v->flags & VT_EXITED) && err != -ENOENT)
			sync_vcpu_xcr0(tids[i], v, g, src_vcpu(s), now);
		/* exited (the BPF side says so, or /proc does): its final counts are in */
		if ((v->flags & VT_EXITED) || err == -ENOENT) {
			map_delete(fd, &tids[i]);
			s->seen = m.sync - 1;
		}
	}
}

static void sync_guest_xstates(time_t now)
{
	int fd = probes_maps()->guest_xstates;
	size_t n = map_read(fd, sizeof(struct guest_xstate_key), sizeof(__u64), 1);
	const struct guest_xstate_key *keys = m.keys;

	m.maps[MAP_GUEST_XSTATES].entries = n;
	for (size_t i = 0; i < n; i++) {
		struct source *s = src_get(SRC_GUEST_XSTATE, keys[i].tgid, keys[i].xfeatures);
		const struct guest *g;
		uint64_t d;
		int r;

		if (s->seen == m.sync)
			continue;
		s->seen = m.sync;
		r = guest_of(keys[i].tgid, &g);
		if (r == 0) {
			map_delete(fd, &keys[i]);
			s->seen = m.sync - 1;
			continue;
		}
		if (r < 0)
			continue;
		if (!s->mapped || s->gen != m.gen || s->name_gen != g->name_gen) {
			/* the saved PKRU is the host's (KVM restores it at VM exit): not the guest's */
			uint64_t xf = keys[i].xfeatures & ~(1ull << PKRU_BIT);
			char hex[19];

			xstate_format(xf, hex);
			struct label l[] = { { "domain", g->domain }, { "xfeatures", hex } };

			src_map(s, NULL, guest_owner(g));
			s->name_gen = g->name_gen;
			src_slots(s)[GX_SAVES] = model_series(m.model, &f_guest_xstate_saves, s->owner, 2, l);
			component_series(s, &f_guest_component_saves, &(struct label){ "domain", g->domain },
					 xf, 1);
		}
		model_owner_alive(m.model, s->owner, now);
		d = m.sums[i] >= s->prev[0] ? m.sums[i] - s->prev[0] : m.sums[i];
		s->prev[0] = m.sums[i];
		for (unsigned int j = 0; d && j < s->nslots; j++)
			if (src_slots(s)[j])
				model_add(m.model, src_slots(s)[j], d);
	}
}

/* One fpu_guest_info per VM seen by this collection. */
static void sync_guest_info(time_t now)
{
	for (const struct guest *g = guests_first(); g; g = g->next) {
		struct source *s;

		if (!g->used)
			continue;
		s = src_get(SRC_GUEST, (uint64_t)g->pid, g->start_time);
		s->seen = m.sync;
		if (!s->mapped || s->name_gen != g->name_gen) {
			char pid[16];

			snprintf(pid, sizeof(pid), "%d", (int)g->pid);
			struct label l[] = { { "domain", g->domain }, { "pid", pid }, { "cgroup", g->cgroup },
					     { "vmm", g->vmm }, { "uuid", g->uuid } };

			src_map(s, NULL, guest_owner(g));
			s->name_gen = g->name_gen;
			src_slots(s)[0] = model_series(m.model, &f_guest_info, s->owner, 5, l);
		}
		model_owner_alive(m.model, s->owner, now);
	}
}

/* ---- collection ---- */

/* The read buffers are as large as the largest map's contents: not kept between collections. */
static void map_buffers_free(void)
{
	free(m.keys);
	free(m.vals);
	m.keys = NULL;
	m.vals = m.sums = NULL;
	m.keys_bytes = m.vals_bytes = m.cap = 0;
}

static void map_full_read(void)
{
	int fd = probes_maps()->map_full;
	__u64 *per = xcalloc((size_t)m.ncpus, sizeof(__u64));

	for (__u32 i = 0; i < MAP__COUNT; i++) {
		if (bpf_map_lookup_elem(fd, &i, per))
			continue;
		m.maps[i].full = 0;
		for (int c = 0; c < m.ncpus; c++)
			m.maps[i].full += per[c];
	}
	free(per);
}

/* The kernel's own account of a map's memory, from its fd's fdinfo. */
static unsigned long long map_memory(int fd)
{
	char path[64], line[128];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (!(f = fopen(path, "re")))
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* ---- the recent-rates history ---- */

/* Hands the value of label name in a rendered label set to the history. */
static void history_feed(void *arg, const char *labels, uint64_t value)
{
	const char *name = arg, *p = labels, *e;
	size_t nl = strlen(name);

	while ((p = strstr(p, name)) && !((p[-1] == '{' || p[-1] == ',') && p[nl] == '=' && p[nl + 1] == '"'))
		p += nl;
	if (!p)
		return;
	p += nl + 2;
	for (e = p; *e && *e != '"'; e++)
		if (*e == '\\' && e[1])
			e++;
	history_add(name[0] == 'd' ? HISTORY_VM : HISTORY_CGROUP, p, (size_t)(e - p), value);
}

/* A VM's rate is its fpu_reload summed over its vCPUs; a cgroup's, its saves at context switch. */
static void history_sample(time_t now)
{
	history_begin(now);
	model_walk(m.model, &f_guest_reloads, history_feed, "domain");
	model_walk(m.model, &f_regs_deactivated, history_feed, "cgroup");
	history_end();
}

/*
 * The one step that reads the kernel: maps into the model, names from the
 * caches, entries deleted only on proof that what they count is gone.
 */
static void collect(void)
{
	time_t now = time(NULL);

	m.sync++;
	if (m.sync == 0)
		m.sync = 1;
	model_begin(m.model);
	machined_refresh();
	guests_begin();
	/* Removals are noticed within half the grace period. */
	cgroups_begin(now, m.grace / 2 < 1 ? 1 : m.grace / 2 > 60 ? 60 : m.grace / 2);
	sync_cgroup_counts(MAP_CGROUP_HOT, READ_HOT, probes_maps()->cgroup_hot, 0, HOT__COUNT, 1, now);
	sync_cgroup_counts(MAP_CGROUP_RARE, READ_RARE, probes_maps()->cgroup_rare, CG_RARE_FIRST,
			   RARE__COUNT, 0, now);
	sync_cgroup_pairs(MAP_CGROUP_XSTATES, 0, probes_maps()->cgroup_xstates, 1, now);
	sync_cgroup_pairs(MAP_XCOMP_REQUESTS, 1, probes_maps()->xcomp_requests, 0, now);
	cgroups_expire(now, m.grace);
	sync_vcpu_threads(now);
	sync_guest_xstates(now);
	sync_guest_info(now);
	src_sweep();
	cg_sweep();
	guests_sweep();
	model_prune(m.model, now);
	if (history_due(now))
		history_sample(now);
	map_full_read();
	for (int i = 0; i < MAP__COUNT; i++)
		m.maps[i].memory = map_memory(probes_map_fd((enum map_id)i));
	m.maps[MAP_REMOVED_CGROUPS].entries = 0;
	map_buffers_free();
}

/* After a burst of series has gone, glibc keeps the freed heap unless asked to give it back. */
static void release_memory(void)
{
	static size_t peak;

	size_t n = m.nsources + m.ncgroups;

	if (n > peak)
		peak = n;
	if (n < peak / 2 || (peak && !n)) {
		malloc_trim(0);
		peak = n;
	}
}

/* ---- rendering ---- */

static void render_self(struct buf *b, enum expo_format format)
{
	const struct probe_status *st;
	int n = probes_status(&st);
	struct model_stats ms;

	expo_family_header(b, &f_build_info, format);
	{
		struct label l[] = { { "version", FPU_EXPORTER_VERSION },
				     { "libbpf", probes_libbpf_version() }, { "kernel", m.kernel } };

		expo_add(b, &f_build_info, 1, 3, l);
	}
	expo_family_header(b, &f_probe_attached, format);
	for (int i = 0; i < n; i++)
		expo_add(b, &f_probe_attached, st[i].attached, 1, &(struct label){ "probe", st[i].probe });
	expo_family_header(b, &f_bpf_run_seconds, format);
	for (int i = 0; i < n; i++)
		if (st[i].attached)
			expo_add(b, &f_bpf_run_seconds, (double)st[i].run_time_ns / 1e9, 1,
				 &(struct label){ "probe", st[i].probe });
	expo_family_header(b, &f_bpf_runs, format);
	for (int i = 0; i < n; i++)
		if (st[i].attached)
			expo_add(b, &f_bpf_runs, (double)st[i].run_count, 1,
				 &(struct label){ "probe", st[i].probe });
	expo_family_header(b, &f_bpf_missed, format);
	for (int i = 0; i < n; i++)
		if (st[i].attached)
			expo_add(b, &f_bpf_missed, (double)st[i].missed, 1,
				 &(struct label){ "probe", st[i].probe });
	expo_family_header(b, &f_map_entries, format);
	for (int i = 0; i < MAP__COUNT; i++)
		expo_add(b, &f_map_entries, (double)m.maps[i].entries, 1,
			 &(struct label){ "map", m.maps[i].name });
	expo_family_header(b, &f_map_capacity, format);
	for (int i = 0; i < MAP__COUNT; i++)
		expo_add(b, &f_map_capacity, m.maps[i].capacity, 1, &(struct label){ "map", m.maps[i].name });
	expo_family_header(b, &f_map_memory, format);
	for (int i = 0; i < MAP__COUNT; i++)
		expo_add(b, &f_map_memory, (double)m.maps[i].memory, 1,
			 &(struct label){ "map", m.maps[i].name });
	expo_family_header(b, &f_map_full, format);
	for (int i = 0; i < MAP__COUNT; i++)
		if (i != MAP_REMOVED_CGROUPS)	/* an LRU: never full, the oldest go */
			expo_add(b, &f_map_full, (double)m.maps[i].full, 1,
				 &(struct label){ "map", m.maps[i].name });
	expo_family_header(b, &f_cgroups_unnamed, format);
	expo_add(b, &f_cgroups_unnamed, (double)m.unnamed, 0, NULL);
	expo_family_header(b, &f_cgroups_unreadable, format);
	expo_add(b, &f_cgroups_unreadable, (double)cgroups_unreadable(), 0, NULL);
	expo_family_header(b, &f_proc_errors, format);
	expo_add(b, &f_proc_errors, (double)m.proc_errors, 0, NULL);
	model_stats(m.model, &ms);
	expo_family_header(b, &f_series, format);
	expo_add(b, &f_series, (double)ms.series, 0, NULL);
	expo_family_header(b, &f_series_overflow, format);
	expo_add(b, &f_series_overflow, (double)ms.overflowed, 0, NULL);
	expo_family_header(b, &f_series_folded, format);
	expo_add(b, &f_series_folded, (double)ms.folded, 0, NULL);
	expo_family_header(b, &f_scrape_duration, format);
	expo_add(b, &f_scrape_duration, m.last_duration, 0, NULL);
	expo_family_header(b, &f_scrapes, format);
	for (int f = EXPO_TEXT; f <= EXPO_OPENMETRICS; f++)
		expo_add(b, &f_scrapes, (double)m.scrapes[f], 1,
			 &(struct label){ "format", f == EXPO_TEXT ? "text" : "openmetrics" });
}

/* The standard process_* metrics, from /proc/self. */
static void render_process(struct buf *b, enum expo_format format)
{
	char stat[1024];
	unsigned long utime, stime, vsize;
	unsigned long long start;
	long rss;
	struct rlimit rl;
	struct dirent *de;
	const char *p;
	int fds = 0;
	DIR *d;
	FILE *f = fopen("/proc/self/stat", "re");

	if (f && fgets(stat, sizeof(stat), f) && (p = strrchr(stat, ')')) &&
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d "
		   "%llu %lu %ld", &utime, &stime, &start, &vsize, &rss) == 5) {
		expo_family_header(b, &f_cpu, format);
		expo_add(b, &f_cpu, (double)(utime + stime) / (double)m.ticks, 0, NULL);
		expo_family_header(b, &f_vsz, format);
		expo_add(b, &f_vsz, (double)vsize, 0, NULL);
		expo_family_header(b, &f_rss, format);
		expo_add(b, &f_rss, (double)rss * (double)sysconf(_SC_PAGESIZE), 0, NULL);
		expo_family_header(b, &f_start, format);
		expo_add(b, &f_start, m.boot_time + (double)start / (double)m.ticks, 0, NULL);
	}
	if (f)
		fclose(f);
	d = opendir("/proc/self/fd");
	while (d && (de = readdir(d)))
		fds += de->d_name[0] != '.';
	if (d) {
		closedir(d);
		expo_family_header(b, &f_fds, format);
		expo_add(b, &f_fds, fds - 1, 0, NULL);	/* less the one reading the directory */
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		expo_family_header(b, &f_max_fds, format);
		expo_add(b, &f_max_fds, (double)rl.rlim_cur, 0, NULL);
	}
}

void metrics_render(struct buf *out, enum expo_format format)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	m.scrapes[format]++;
	collect();
	if (!out->flush)	/* the whole text in memory: room for the last one's size at once */
		buf_reserve(out, m.last_len + m.last_len / 16);
	model_render(m.model, out, format);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	m.last_duration = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	render_self(out, format);
	render_process(out, format);
	expo_end(out, format);
	if (!out->flush)
		m.last_len = out->len;
	release_memory();
}

void metrics_housekeep(void)
{
	collect();
	release_memory();
}

/* ---- setup ---- */

int metrics_configure(const struct config *cfg, char *err, size_t errlen)
{
	struct cgroup_filter *f = cgroups_filter_new(cfg->cgroup_depth, cfg->cgroup_include.v,
						     cfg->cgroup_include.n, cfg->cgroup_exclude.v,
						     cfg->cgroup_exclude.n, err, errlen);

	if (!f)
		return -1;
	cgroups_filter_free(m.filter);
	m.filter = f;
	m.grace = cfg->grace_period;
	m.gen++;	/* every source is mapped again at the next collection */
	if (m.model)
		model_set_max_series(m.model, (size_t)cfg->max_series);
	return 0;
}

static double read_boot_time(void)
{
	char line[256];
	double t = 0;
	FILE *f = fopen("/proc/stat", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %lf", &t) == 1)
			break;
	if (f)
		fclose(f);
	return t;
}

static int removed_cgroup(uint64_t id, uint64_t *parent, char *name, size_t size)
{
	struct removed_cgroup rc;

	if (bpf_map_lookup_elem(probes_maps()->removed_cgroups, &id, &rc))
		return -1;
	rc.name[sizeof(rc.name) - 1] = '\0';
	*parent = rc.parent_id;
	snprintf(name, size, "%s", rc.name);
	return 0;
}

int metrics_init(const struct config *cfg, char *err, size_t errlen)
{
	static const char *const names[MAP__COUNT] = {
		[MAP_CGROUP_HOT] = "cgroup_hot",
		[MAP_CGROUP_RARE] = "cgroup_rare",
		[MAP_CGROUP_XSTATES] = "cgroup_xstates",
		[MAP_VCPU_THREADS] = "vcpu_threads",
		[MAP_GUEST_XSTATES] = "guest_xstates",
		[MAP_REMOVED_CGROUPS] = "removed_cgroups",
		[MAP_XCOMP_REQUESTS] = "xcomp_requests",
	};
	struct utsname u;

	m.boot_time = read_boot_time();
	cgroups_set_removed_lookup(removed_cgroup);
	m.ticks = sysconf(_SC_CLK_TCK);
	m.ncpus = libbpf_num_possible_cpus();
	if (m.ncpus < 1)
		m.ncpus = 1;
	snprintf(m.kernel, sizeof(m.kernel), "%s", uname(&u) == 0 ? u.release : "unknown");
	for (size_t i = 0; i < MAP__COUNT; i++) {
		struct bpf_map_info info = { 0 };
		__u32 len = sizeof(info);

		m.maps[i].name = names[i];
		if (bpf_obj_get_info_by_fd(probes_map_fd((enum map_id)i), &info, &len) == 0)
			m.maps[i].capacity = info.max_entries;
	}
	m.model = model_new(data_families, sizeof(data_families) / sizeof(data_families[0]));
	src_fit();
	cg_fit();
	if (metrics_configure(cfg, err, errlen) < 0)
		return -1;
	model_set_max_series(m.model, (size_t)cfg->max_series);
	return 0;
}

int metrics_map_stats(const struct map_stat **out)
{
	*out = m.maps;
	return MAP__COUNT;
}

static void src_free_parts(void *e)
{
	free(((struct source *)e)->ident);
}

static void cg_free_parts(void *e)
{
	free(((struct cg_src *)e)->tail);
}

void metrics_fini(void)
{
	chain_free((void ***)&m.buckets, &m.nbuckets, src_free_parts);
	chain_free((void ***)&m.cg_buckets, &m.cg_nbuckets, cg_free_parts);
	model_free(m.model);
	cgroups_filter_free(m.filter);
	map_buffers_free();
	memset(&m, 0, sizeof(m));
}
