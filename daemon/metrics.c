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
 * What a source is: a BPF map entry (a cgroup's: its entries in cgroup_hot
 * and cgroup_rare; or one VM, for its info series), with the counts last
 * read from it and the series it adds to.
 */
enum src_kind { SRC_CG, SRC_CG_XSTATE, SRC_VCPU, SRC_GUEST_XSTATE, SRC_GUEST, SRC_XCR0, SRC_CG_XCOMP };

/* The maps a source is read from, each once a collection (read_maps). */
#define READ_HOT	1
#define READ_RARE	2

/* Slot layout per kind: the counters first (by their index in the map value), then the rest. */
#define CG_RARE_FIRST	HOT__COUNT	/* SRC_CG: cgroup_hot's counters, then cgroup_rare's, then info */
#define CG_INFO		(HOT__COUNT + RARE__COUNT)	/* SRC_CG: the cgroup's fpu_cgroup_info */
#define XS_SAVES	0	/* SRC_CG_XSTATE: fpu_xstate_saves_total */
#define XS_DEACT	1	/* fpu_regs_deactivated_total */
#define XS_COMPONENTS	2	/* one per component, then fpu_xstate_enlarged_saves_total if enlarged */
#define VCPU_LOADS	0
#define VCPU_RELOADS	1
#define GX_SAVES	0	/* SRC_GUEST_XSTATE, then one per component */

struct source {
	struct source *next;
	uint64_t k1, k2;
	struct owner *owner;
	unsigned int seen;	/* the collection that last read it */
	unsigned int gen;	/* configuration generation of the mapping */
	unsigned char kind;
	unsigned char mapped;	/* slots are for the current mapping */
	unsigned char ncounters, nslots;
	unsigned char read_maps;	/* SRC_CG: READ_* of the maps read in collection seen */
	union {
		struct {	/* SRC_CG, SRC_CG_XSTATE, SRC_CG_XCOMP */
			unsigned int unknown_scan;	/* the scan generation when it was first unknown */
			unsigned int tried_scan;	/* the generation of its last lookup, one rescan each */
			unsigned int alive_scan;	/* 1 + the scan generation it was last found alive in */
			uint32_t unknown_since;		/* when it was first unknown (time_t, truncated) */
		} cg;
		struct {	/* the guest kinds */
			char *ident;	/* SRC_VCPU: "domain/vcpu" when last mapped (SRC_XCR0: its owner's key says) */
			unsigned int name_gen;	/* its VM's naming generation at mapping */
		} vm;
	} u;
	/* ncounters counts last read, then nslots series: one allocation, sized by kind */
	uint64_t prev[];
};

static int src_is_cgroup(const struct source *s)
{
	return s->kind == SRC_CG || s->kind == SRC_CG_XSTATE || s->kind == SRC_CG_XCOMP;
}

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

static void src_resize(size_t nb)
{
	chain_rehash((void ***)&m.buckets, &m.nbuckets, nb, src_index);
}

static unsigned int popcount64(uint64_t x)
{
	return (unsigned int)__builtin_popcountll(x);
}

/* Counters and series of a source, fixed by its kind and key. */
static void src_shape(unsigned char kind, uint64_t k2, unsigned int *ncounters, unsigned int *nslots)
{
	switch (kind) {
	case SRC_CG:
		*ncounters = HOT__COUNT + RARE__COUNT;
		*nslots = HOT__COUNT + RARE__COUNT + 1;
		break;
	case SRC_CG_XSTATE:
		*ncounters = 1;
		*nslots = XS_COMPONENTS + popcount64(k2 & ~XSTATE_ENLARGED) + !!(k2 & XSTATE_ENLARGED);
		break;
	case SRC_CG_XCOMP:
		*ncounters = 1;
		*nslots = 1;
		break;
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
	if (m.nsources >= 2 * m.nbuckets) {	/* two a bucket */
		src_resize(m.nbuckets ? m.nbuckets * 2 : SRC_BUCKETS_MIN);
		i = src_bucket(kind, k1, k2, m.nbuckets);
	}
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
	int new_ident = ident && (!s->u.vm.ident || strcmp(s->u.vm.ident, ident));

	if (s->owner != o || new_ident)
		memset(s->prev, 0, s->ncounters * sizeof(s->prev[0]));
	if (new_ident) {
		free(s->u.vm.ident);
		s->u.vm.ident = xstrdup(ident);
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
			if (!src_is_cgroup(s))
				free(s->u.vm.ident);
			free(s);
			m.nsources--;
		}
	}
	if (m.nbuckets > SRC_BUCKETS_MIN && m.nsources < m.nbuckets / 8)	/* a table a burst grew */
		src_resize(m.nbuckets / 4 > SRC_BUCKETS_MIN ? m.nbuckets / 4 : SRC_BUCKETS_MIN);
}

/* Adds what a counter grew by since the last read to its series, made on first growth. */
static void add_delta(struct source *s, unsigned int counter, uint64_t cur,
		      series_id (*make)(struct source *, unsigned int))
{
	uint64_t d = cur >= s->prev[counter] ? cur - s->prev[counter] : cur;
	series_id *slots = src_slots(s);

	s->prev[counter] = cur;
	if (!d || !s->mapped)
		return;
	if (!slots[counter] && make)
		slots[counter] = make(s, counter);
	if (slots[counter])
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
static series_id cg_series(struct source *s, const struct family *f, const char *k2,
				const char *v2)
{
	return model_series_under(m.model, f, s->owner, k2 ? 1 : 0, &(struct label){ k2, v2 });
}

/* The series of an SRC_CG counter: guest saves are context-switch saves too. */
static series_id make_cg(struct source *s, unsigned int counter)
{
	switch (counter) {
	case HOT_REGS_ACTIVATED: return cg_series(s, &f_regs_activated, NULL, NULL);
	case HOT_GUEST_SAVES: return cg_series(s, &f_regs_deactivated, NULL, NULL);
	case CG_RARE_FIRST + RARE_SIGNAL_FRAMES: return cg_series(s, &f_signal_frames, NULL, NULL);
	case CG_RARE_FIRST + RARE_SIGRETURNS: return cg_series(s, &f_sigreturn_restores, NULL, NULL);
	case CG_RARE_FIRST + RARE_SIGRETURN_BAD_MAGIC:
		return cg_series(s, &f_sigreturn_failures, "reason", "bad_magic");
	case CG_RARE_FIRST + RARE_SIGRETURN_BAD_FRAME:
		return cg_series(s, &f_sigreturn_failures, "reason", "bad_frame");
	case CG_RARE_FIRST + RARE_TASK_COPIES: return cg_series(s, &f_task_copies, NULL, NULL);
	default: return cg_series(s, &f_task_drops, NULL, NULL);
	}
}

/* Component series of an XSTATE_BV into slots[first...]: after label, or under the owner's label (NULL). */
static void component_series(struct source *s, const struct family *f, const struct label *label,
			     uint64_t xf, unsigned int first)
{
	char scratch[8];

	for (unsigned int bit = 0, i = first; bit < 64; bit++) {
		if (!(xf >> bit & 1))
			continue;
		struct label comp = { "component", xstate_component_name(bit, scratch) };

		src_slots(s)[i++] = label ? model_series(m.model, f, s->owner, 2, (struct label[]){ *label, comp }) :
					    model_series_under(m.model, f, s->owner, 1, &comp);
	}
}

/* Maps a cgroup source to its label's series; 0 when mapped, -1 when the cgroup is not exported. */
static int cg_map(struct source *s, const char *path)
{
	char buf[PATH_MAX];
	const char *label = cgroups_label(m.filter, path, buf, sizeof(buf));
	series_id *slots = src_slots(s);
	struct cgroup_desc d;
	struct owner *o;

	if (!label[0]) {	/* excluded */
		src_map(s, NULL, NULL);
		s->mapped = 0;
		return -1;
	}
	o = model_owner_label(m.model, &(struct label){ "cgroup", label }, m.grace);
	src_map(s, NULL, o);
	cgroups_describe(label, &d);
	{
		struct label l[] = { { "unit", d.unit }, { "pod_uid", d.pod_uid },
				     { "container_id", d.container_id } };
		series_id info = model_series_under(m.model, &f_cgroup_info, o, 3, l);

		/*
		 * Held by the cgroup's SRC_CG; made by the others too (a cgroup
		 * counted only there still has its info series), not held:
		 * it lives as long as its owner does.
		 */
		if (s->kind == SRC_CG)
			slots[CG_INFO] = info;
		else
			model_series_put(m.model, info);
	}
	if (s->kind == SRC_CG_XSTATE) {
		uint64_t bv = s->k2 & ~XSTATE_ENLARGED;
		char xf[19];

		xstate_format(bv, xf);
		slots[XS_SAVES] = cg_series(s, &f_xstate_saves, "xfeatures", xf);
		slots[XS_DEACT] = cg_series(s, &f_regs_deactivated, NULL, NULL);
		component_series(s, &f_component_saves, NULL, bv, XS_COMPONENTS);
		if (s->k2 & XSTATE_ENLARGED)
			slots[s->nslots - 1] = cg_series(s, &f_xstate_enlarged_saves, NULL, NULL);
	}
	if (s->kind == SRC_CG_XCOMP) {
		struct xcomp_request_key k = { .cgroup_id = s->k1 };
		char scratch[8];

		memcpy((char *)&k + sizeof(k.cgroup_id), &s->k2, sizeof(s->k2));
		struct label l[] = { { "kind", k.guest ? "guest" : "process" },
				     { "feature", xstate_component_name(k.feature & 63, scratch) },
				     { "result", k.refused ? "refused" : "granted" } };

		slots[0] = model_series_under(m.model, &f_xcomp_requests, o, 3, l);
	}
	return 0;
}

/*
 * Resolves a cgroup source's id; returns its state.  An id not known yet is
 * kept as it is (its counts are added once it is named); one that stays
 * unknown through the grace period and a complete scan is dropped, counted.
 */
static enum cg_state cg_resolve(struct source *s, const void *key, int fd, time_t now)
{
	const char *path;
	enum cg_state st;

	/*
	 * Only a complete scan finds a cgroup gone: one alive since the last
	 * one, under the same configuration, is alive still (no lookup).
	 */
	if (s->u.cg.alive_scan == cgroups_scan_generation() + 1 && s->gen == m.gen) {
		if (s->owner)
			model_owner_alive(m.model, s->owner, now);
		return CG_ALIVE;
	}
	st = cgroups_lookup(s->k1, !s->u.cg.unknown_since || s->u.cg.tried_scan != cgroups_scan_generation(), &path);
	if (st == CG_UNKNOWN) {
		if (!s->u.cg.unknown_since) {
			s->u.cg.unknown_since = (uint32_t)now;
			s->u.cg.unknown_scan = cgroups_scan_generation();
		} else if ((uint32_t)now - s->u.cg.unknown_since >= m.grace &&
			   cgroups_scan_generation() != s->u.cg.unknown_scan) {
			map_delete(fd, key);
			m.unnamed++;
			s->seen = m.sync - 1;	/* swept */
		}
		s->u.cg.tried_scan = cgroups_scan_generation();
		return st;
	}
	s->u.cg.unknown_since = 0;
	s->u.cg.alive_scan = st == CG_ALIVE ? cgroups_scan_generation() + 1 : 0;
	/* a cgroup's path never changes: its labels change only with the configuration */
	if (s->gen != m.gen)
		cg_map(s, path);
	if (s->owner && st == CG_ALIVE)
		model_owner_alive(m.model, s->owner, now);
	return st;
}

/* After its counts were added: a cgroup gone for the grace period leaves the map. */
static void cg_retire(struct source *s, enum cg_state st, const void *key, int fd, time_t now)
{
	if (st == CG_GONE && cgroups_gone_for(s->k1, now, m.grace)) {
		map_delete(fd, key);
		s->seen = m.sync - 1;
	}
}

/*
 * The entries a cgroup has in cgroup_hot (per-CPU) and cgroup_rare (shared):
 * n counters each, the source's counters from first on.
 */
static void sync_cgroup_counts(enum map_id id, unsigned char read, int fd, unsigned int first,
			       unsigned int n, int percpu, time_t now)
{
	size_t entries = map_read(fd, sizeof(__u64), n * sizeof(__u64), percpu);
	const __u64 *ids = m.keys;

	m.maps[id].entries = entries;
	for (size_t i = 0; i < entries; i++) {
		struct source *s = src_get(SRC_CG, ids[i], 0);
		enum cg_state st;

		if (s->seen != m.sync)
			s->read_maps = 0;
		else if (s->read_maps & read)
			continue;	/* the key walk gave it twice */
		s->seen = m.sync;
		s->read_maps |= read;
		if ((st = cg_resolve(s, &ids[i], fd, now)) == CG_UNKNOWN)
			continue;
		for (unsigned int c = 0; c < n; c++)
			add_delta(s, first + c, m.sums[i * n + c], make_cg);
		cg_retire(s, st, &ids[i], fd, now);
	}
}

/*
 * Entries keyed by a cgroup id and one more word, with one counter: saves by
 * XSTATE_BV (per-CPU) and dynamic-feature permission requests (shared).
 */
static void sync_cgroup_pairs(enum map_id id, unsigned char kind, int fd, int percpu, time_t now)
{
	size_t n = map_read(fd, 2 * sizeof(__u64), sizeof(__u64), percpu);
	const __u64 *keys = m.keys;

	m.maps[id].entries = n;
	for (size_t i = 0; i < n; i++) {
		const __u64 *key = &keys[2 * i];
		struct source *s = src_get(kind, key[0], key[1]);
		uint64_t d;
		enum cg_state st;

		if (s->seen == m.sync)
			continue;
		s->seen = m.sync;
		if ((st = cg_resolve(s, key, fd, now)) == CG_UNKNOWN)
			continue;
		d = m.sums[i] >= s->prev[0] ? m.sums[i] - s->prev[0] : m.sums[i];
		s->prev[0] = m.sums[i];
		if (d && s->mapped)
			for (unsigned int j = 0; j < s->nslots; j++)
				if (src_slots(s)[j])
					model_add(m.model, src_slots(s)[j], d);
		cg_retire(s, st, key, fd, now);
	}
}

/* ---- guests ---- */

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
	const char *p = s->u.vm.ident ? strrchr(s->u.vm.ident, '/') : NULL;

	return p ? p + 1 : NULL;
}

static void vcpu_map(struct source *s, const struct guest *g, const char *vcpu_label)
{
	char vcpu[16], *ident;

	snprintf(vcpu, sizeof(vcpu), "%s", vcpu_label);	/* it may be in the ident replaced here */
	ident = xasprintf("%s/%s", g->domain, vcpu);
	src_map(s, ident, guest_owner(g));
	free(ident);
	s->u.vm.name_gen = g->name_gen;

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
		if (!s->mapped || s->gen != m.gen || s->u.vm.name_gen != g->name_gen ||
		    (err == 0 && strcmp(src_vcpu(s), vcpu)))
			vcpu_map(s, g, err == 0 || !src_vcpu(s) ? vcpu : src_vcpu(s));
		add_delta(s, VCPU_LOADS, v->loads, NULL);
		add_delta(s, VCPU_RELOADS, v->reloads, NULL);
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
		if (!s->mapped || s->gen != m.gen || s->u.vm.name_gen != g->name_gen) {
			/* the saved PKRU is the host's (KVM restores it at VM exit): not the guest's */
			uint64_t xf = keys[i].xfeatures & ~(1ull << PKRU_BIT);
			char hex[19];

			xstate_format(xf, hex);
			struct label l[] = { { "domain", g->domain }, { "xfeatures", hex } };

			src_map(s, NULL, guest_owner(g));
			s->u.vm.name_gen = g->name_gen;
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
		if (!s->mapped || s->u.vm.name_gen != g->name_gen) {
			char pid[16];

			snprintf(pid, sizeof(pid), "%d", (int)g->pid);
			struct label l[] = { { "domain", g->domain }, { "pid", pid }, { "cgroup", g->cgroup },
					     { "vmm", g->vmm }, { "uuid", g->uuid } };

			src_map(s, NULL, guest_owner(g));
			s->u.vm.name_gen = g->name_gen;
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
	sync_cgroup_pairs(MAP_CGROUP_XSTATES, SRC_CG_XSTATE, probes_maps()->cgroup_xstates, 1, now);
	sync_cgroup_pairs(MAP_XCOMP_REQUESTS, SRC_CG_XCOMP, probes_maps()->xcomp_requests, 0, now);
	cgroups_expire(now, m.grace);
	sync_vcpu_threads(now);
	sync_guest_xstates(now);
	sync_guest_info(now);
	src_sweep();
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

	if (m.nsources > peak)
		peak = m.nsources;
	if (m.nsources < peak / 2 || (peak && !m.nsources)) {
		malloc_trim(0);
		peak = m.nsources;
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
	src_resize(SRC_BUCKETS_MIN);
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

void metrics_fini(void)
{
	for (size_t i = 0; i < m.nbuckets; i++) {
		struct source *s = m.buckets[i], *next;

		for (; s; s = next) {
			next = s->next;
			if (!src_is_cgroup(s))
				free(s->u.vm.ident);
			free(s);
		}
	}
	free(m.buckets);
	model_free(m.model);
	cgroups_filter_free(m.filter);
	map_buffers_free();
	memset(&m, 0, sizeof(m));
}
