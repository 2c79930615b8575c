/* metrics.c: every metric family, and the scrape-time walk from BPF maps to samples. */
#include <dirent.h>
#include <errno.h>
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
#include "expo.h"
#include "fpu_exporter.h"
#include "guests.h"
#include "log.h"
#include "machined.h"
#include "metrics.h"
#include "probes.h"
#include "version.h"
#include "xstate.h"

#define COUNTER(var, name, help) static const struct family var = { name, METRIC_COUNTER, help, 0 }
#define GAUGE(var, name, help) static const struct family var = { name, METRIC_GAUGE, help, 0 }
#define INFO(var, name, help) static const struct family var = { name, METRIC_GAUGE, help, 1 }

COUNTER(f_regs_activated, "fpu_regs_activated_total",
	"FPU register loads for tasks of the cgroup (x86_fpu_regs_activated).");
COUNTER(f_regs_deactivated, "fpu_regs_deactivated_total",
	"FPU register saves at context switch for tasks of the cgroup (x86_fpu_regs_deactivated).");
COUNTER(f_xstate_saves, "fpu_xstate_saves_total",
	"Context-switch saves of host FPU state, by the XSTATE_BV just saved.");
COUNTER(f_component_saves, "fpu_xstate_component_saves_total",
	"Context-switch saves of host FPU state in which the XSAVE component was live.");
COUNTER(f_signal_frames, "fpu_signal_frames_total",
	"Signal frames set up with FPU state, for signals delivered to a handler.");
COUNTER(f_sigreturn_restores, "fpu_sigreturn_restores_total",
	"FPU state restores from a signal frame (rt_sigreturn).");
COUNTER(f_sigreturn_failures, "fpu_sigreturn_failures_total",
	"Signal-frame FPU restores that failed: bad_magic (no valid XSAVE magic, legacy restore), "
	"bad_frame (the frame could not be restored: SIGSEGV).");
COUNTER(f_task_copies, "fpu_task_copies_total",
	"FPU state copied to a new task at fork/clone (x86_fpu_copy_dst).");
COUNTER(f_task_drops, "fpu_task_drops_total",
	"FPU state dropped at thread exit (x86_fpu_dropped).");
COUNTER(f_guest_loads, "fpu_guest_loads_total",
	"Guest FPU state loads (kvm_fpu load), per vCPU.");
COUNTER(f_guest_reloads, "fpu_guest_reloads_total",
	"KVM's fpu_reload: guest FPU state put back for the host (kvm_fpu unload), per vCPU.");
COUNTER(f_guest_xstate_saves, "fpu_guest_xstate_saves_total",
	"Saves of guest FPU state (at kvm_fpu unload and at context switch in guest context), "
	"by the guest XSTATE_BV just saved.");
COUNTER(f_guest_component_saves, "fpu_guest_xstate_component_saves_total",
	"Saves of guest FPU state in which the XSAVE component was live.");
INFO(f_guest_info, "fpu_guest_info",
	"One per running VM: its process, cgroup, VMM and, where known, UUID.");
INFO(f_cgroup_info, "fpu_cgroup_info",
	"One per cgroup in the data series: its systemd unit, Kubernetes pod UID and container id.");
INFO(f_build_info, "fpu_exporter_build_info",
	"Version of the exporter, of libbpf, and the running kernel.");
GAUGE(f_probe_attached, "fpu_exporter_probe_attached",
	"1 when the probe is attached, 0 when not (the log says why).");
COUNTER(f_bpf_run_seconds, "fpu_exporter_bpf_run_seconds_total",
	"Time spent in the probe's BPF program; counts only while kernel.bpf_stats_enabled=1.");
COUNTER(f_bpf_runs, "fpu_exporter_bpf_runs_total",
	"Runs of the probe's BPF program; counts only while kernel.bpf_stats_enabled=1.");
GAUGE(f_map_entries, "fpu_exporter_map_entries",
	"Entries in the BPF map at this scrape.");
GAUGE(f_map_capacity, "fpu_exporter_map_capacity",
	"Maximum entries of the BPF map.");
COUNTER(f_map_full, "fpu_exporter_map_full_total",
	"Events not counted because the BPF map was full.");
GAUGE(f_series_folded, "fpu_exporter_series_folded",
	"Series folded into overflow series at this scrape (series.max_per_family reached).");
GAUGE(f_scrape_duration, "fpu_exporter_scrape_duration_seconds",
	"Time this scrape took to read the maps and resolve names.");
COUNTER(f_scrapes, "fpu_exporter_scrapes_total",
	"Scrapes served, by exposition format (text 0.0.4 or OpenMetrics).");
COUNTER(f_cpu, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.");
GAUGE(f_rss, "process_resident_memory_bytes", "Resident memory size in bytes.");
GAUGE(f_vsz, "process_virtual_memory_bytes", "Virtual memory size in bytes.");
GAUGE(f_start, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.");
GAUGE(f_fds, "process_open_fds", "Number of open file descriptors.");
GAUGE(f_max_fds, "process_max_fds", "Maximum number of open file descriptors.");

#define NMAPS MAP__COUNT

static struct {
	time_t grace;
	struct cgroup_filter *filter;
	int ncpus;
	__u64 *percpu;		/* one lookup's per-CPU values */
	void *keys;		/* one map's keys, collected before reading */
	size_t keys_cap;
	struct map_stat maps[NMAPS];
	char kernel[65];
	double boot_time;	/* for process_start_time_seconds */
	unsigned long long scrapes[2];	/* by enum expo_format */
	long ticks;
	struct expo scratch;
} m;

static int map_fd(enum map_id id)
{
	const struct probe_maps *pm = probes_maps();

	switch (id) {
	case MAP_CGROUP_EVENTS: return pm->cgroup_events;
	case MAP_GUEST_XSTATES: return pm->guest_xstates;
	default: return pm->vcpu_threads;
	}
}

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
	m.scratch.max_series = (size_t)cfg->max_series;
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

static int removed_cgroup_path(uint64_t id, char *path, size_t size)
{
	struct removed_cgroup rc;

	if (bpf_map_lookup_elem(probes_maps()->removed_cgroups, &id, &rc))
		return -1;
	rc.path[sizeof(rc.path) - 1] = '\0';
	snprintf(path, size, "%s", rc.path[0] ? rc.path : "/");
	return 0;
}

int metrics_init(const struct config *cfg, char *err, size_t errlen)
{
	static const char *const names[NMAPS] = {
		[MAP_CGROUP_EVENTS] = "cgroup_events",
		[MAP_GUEST_XSTATES] = "guest_xstates",
		[MAP_VCPU_THREADS] = "vcpu_threads",
	};
	struct utsname u;

	m.boot_time = read_boot_time();
	cgroups_set_removed_lookup(removed_cgroup_path);
	m.ticks = sysconf(_SC_CLK_TCK);
	m.ncpus = libbpf_num_possible_cpus();
	if (m.ncpus < 1)
		m.ncpus = 1;
	m.percpu = xcalloc((size_t)m.ncpus, sizeof(__u64));
	snprintf(m.kernel, sizeof(m.kernel), "%s", uname(&u) == 0 ? u.release : "unknown");
	for (size_t i = 0; i < NMAPS; i++) {
		struct bpf_map_info info = { 0 };
		__u32 len = sizeof(info);

		m.maps[i].name = names[i];
		if (bpf_obj_get_info_by_fd(map_fd((enum map_id)i), &info, &len) == 0)
			m.maps[i].capacity = info.max_entries;
	}
	return metrics_configure(cfg, err, errlen);
}

int metrics_map_stats(const struct map_stat **out)
{
	*out = m.maps;
	return NMAPS;
}

void metrics_fini(void)
{
	cgroups_filter_free(m.filter);
	free(m.percpu);
	free(m.keys);
	expo_free(&m.scratch);
	memset(&m, 0, sizeof(m));
}

/* Collects all keys of a map first: deleting while walking with get_next_key restarts the walk. */
static size_t map_keys(int fd, size_t key_size)
{
	size_t n = 0;
	char *prev = NULL;

	for (;;) {
		if (n == m.keys_cap) {
			m.keys_cap = m.keys_cap ? m.keys_cap * 2 : 1024;
			m.keys = xrealloc(m.keys, m.keys_cap * key_size);
		}
		if (bpf_map_get_next_key(fd, prev, (char *)m.keys + n * key_size))
			break;
		prev = (char *)m.keys + n * key_size;
		n++;
	}
	return n;
}

/* Sum over CPUs of a per-CPU counter; -1 if the entry went away meanwhile. */
static int percpu_sum(int fd, const void *key, __u64 *sum)
{
	if (bpf_map_lookup_elem(fd, key, m.percpu))
		return -1;
	*sum = 0;
	for (int c = 0; c < m.ncpus; c++)
		*sum += m.percpu[c];
	return 0;
}

static void add_components(struct expo *e, const struct family *f, struct label *labels,
			   size_t nlabels, __u64 xfeatures, __u64 count)
{
	char scratch[8];

	for (unsigned int bit = 0; bit < 64; bit++) {
		if (!(xfeatures >> bit & 1))
			continue;
		labels[nlabels - 1].value = xstate_component_name(bit, scratch);
		expo_add(e, f, (double)count, nlabels, labels);
	}
}

static void add_cgroup_event(struct expo *e, const struct cgroup_event_key *k, const char *path,
			     __u64 count)
{
	char buf[PATH_MAX], xf[19];
	const char *cgroup = cgroups_label(m.filter, path, buf, sizeof(buf));
	struct label l[2] = { { "cgroup", cgroup }, { NULL, NULL } };
	struct cgroup_desc d;

	if (!cgroup[0])
		return;	/* excluded */
	cgroups_describe(cgroup, &d);
	struct label info[] = { { "cgroup", cgroup }, { "unit", d.unit }, { "pod_uid", d.pod_uid },
				{ "container_id", d.container_id } };

	expo_add(e, &f_cgroup_info, 1, 4, info);

	switch (k->event) {
	case EV_REGS_ACTIVATED:
		expo_add(e, &f_regs_activated, (double)count, 1, l);
		break;
	case EV_REGS_DEACTIVATED:
		xstate_format(k->xfeatures, xf);
		l[1] = (struct label){ "xfeatures", xf };
		expo_add(e, &f_xstate_saves, (double)count, 2, l);
		l[1].name = "component";
		add_components(e, &f_component_saves, l, 2, k->xfeatures, count);
		/* fallthrough */
	case EV_REGS_DEACTIVATED_GUEST:
		expo_add(e, &f_regs_deactivated, (double)count, 1, l);
		break;
	case EV_SIGNAL_FRAME:
		expo_add(e, &f_signal_frames, (double)count, 1, l);
		break;
	case EV_SIGRETURN:
		expo_add(e, &f_sigreturn_restores, (double)count, 1, l);
		break;
	case EV_SIGRETURN_BAD_MAGIC:
	case EV_SIGRETURN_BAD_FRAME:
		l[1] = (struct label){ "reason",
			k->event == EV_SIGRETURN_BAD_MAGIC ? "bad_magic" : "bad_frame" };
		expo_add(e, &f_sigreturn_failures, (double)count, 2, l);
		break;
	case EV_FPU_COPY:
		expo_add(e, &f_task_copies, (double)count, 1, l);
		break;
	case EV_FPU_DROP:
		expo_add(e, &f_task_drops, (double)count, 1, l);
		break;
	}
}

static void collect_cgroup_events(struct expo *e, time_t now)
{
	int fd = probes_maps()->cgroup_events;
	size_t n = map_keys(fd, sizeof(struct cgroup_event_key));
	struct cgroup_event_key *keys = m.keys;

	m.maps[MAP_CGROUP_EVENTS].entries = n;
	for (size_t i = 0; i < n; i++) {
		const char *path = cgroups_path(keys[i].cgroup_id);
		__u64 count;

		if (cgroups_gone_for(keys[i].cgroup_id, now, m.grace)) {
			bpf_map_delete_elem(fd, &keys[i]);
			continue;
		}
		/* no path: gone before any scan saw it, or outside this cgroup namespace */
		if (path && percpu_sum(fd, &keys[i], &count) == 0)
			add_cgroup_event(e, &keys[i], path, count);
	}
	cgroups_expire(now, m.grace);
}

static void collect_vcpu_threads(struct expo *e)
{
	int fd = probes_maps()->vcpu_threads;
	size_t n = map_keys(fd, sizeof(__u32));
	__u32 *tids = m.keys;

	m.maps[MAP_VCPU_THREADS].entries = n;
	for (size_t i = 0; i < n; i++) {
		struct vcpu_thread v;
		const struct guest *g;
		char vcpu[16];

		if (bpf_map_lookup_elem(fd, &tids[i], &v))
			continue;
		g = guests_lookup((pid_t)v.tgid);
		/* Threads whose exit the BPF side missed (fpu__drop skips some) go here. */
		if (!g || guests_vcpu_label(g->pid, (pid_t)tids[i], vcpu, sizeof(vcpu)) < 0) {
			bpf_map_delete_elem(fd, &tids[i]);
			continue;
		}
		struct label l[] = { { "domain", g->domain }, { "vcpu", vcpu } };

		expo_add(e, &f_guest_loads, (double)v.loads, 2, l);
		expo_add(e, &f_guest_reloads, (double)v.reloads, 2, l);
	}
}

static void collect_guest_xstates(struct expo *e)
{
	int fd = probes_maps()->guest_xstates;
	size_t n = map_keys(fd, sizeof(struct guest_xstate_key));
	struct guest_xstate_key *keys = m.keys;

	m.maps[MAP_GUEST_XSTATES].entries = n;
	for (size_t i = 0; i < n; i++) {
		const struct guest *g = guests_lookup((pid_t)keys[i].tgid);
		__u64 count;
		char xf[19];

		if (!g) {
			bpf_map_delete_elem(fd, &keys[i]);
			continue;
		}
		if (percpu_sum(fd, &keys[i], &count))
			continue;
		xstate_format(keys[i].xfeatures, xf);
		struct label l[] = { { "domain", g->domain }, { "xfeatures", xf } };

		expo_add(e, &f_guest_xstate_saves, (double)count, 2, l);
		l[1].name = "component";
		add_components(e, &f_guest_component_saves, l, 2, keys[i].xfeatures, count);
	}
}

static void collect_guest_info(struct expo *e)
{
	for (const struct guest *g = guests_first(); g; g = g->next) {
		char pid[16];

		if (!g->used)
			continue;
		snprintf(pid, sizeof(pid), "%d", (int)g->pid);
		struct label l[] = { { "domain", g->domain }, { "pid", pid }, { "cgroup", g->cgroup },
				     { "vmm", g->vmm }, { "uuid", g->uuid } };

		expo_add(e, &f_guest_info, 1, 5, l);
	}
}

static void collect_self(struct expo *e)
{
	const struct probe_status *st;
	int n = probes_status(&st);
	__u64 full;
	struct label bl[] = { { "version", FPU_EXPORTER_VERSION },
			      { "libbpf", probes_libbpf_version() }, { "kernel", m.kernel } };

	expo_add(e, &f_build_info, 1, 3, bl);
	for (int i = 0; i < n; i++) {
		struct label l[] = { { "probe", st[i].probe } };

		expo_add(e, &f_probe_attached, st[i].attached, 1, l);
		if (!st[i].attached)
			continue;
		expo_add(e, &f_bpf_run_seconds, (double)st[i].run_time_ns / 1e9, 1, l);
		expo_add(e, &f_bpf_runs, (double)st[i].run_count, 1, l);
	}
	for (__u32 i = 0; i < NMAPS; i++) {
		struct label l[] = { { "map", m.maps[i].name } };

		expo_add(e, &f_map_entries, (double)m.maps[i].entries, 1, l);
		expo_add(e, &f_map_capacity, m.maps[i].capacity, 1, l);
		if (percpu_sum(probes_maps()->map_full, &i, &full) == 0) {
			m.maps[i].full = full;
			expo_add(e, &f_map_full, (double)full, 1, l);
		}
	}
}

/* The standard process_* metrics, from /proc/self. */
static void collect_process(struct expo *e)
{
	char stat[1024], path[64];
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
		expo_add(e, &f_cpu, (double)(utime + stime) / (double)m.ticks, 0, NULL);
		expo_add(e, &f_vsz, (double)vsize, 0, NULL);
		expo_add(e, &f_rss, (double)rss * (double)sysconf(_SC_PAGESIZE), 0, NULL);
		expo_add(e, &f_start, m.boot_time + (double)start / (double)m.ticks, 0, NULL);
	}
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "/proc/self/fd");
	d = opendir(path);
	while (d && (de = readdir(d)))
		fds += de->d_name[0] != '.';
	if (d) {
		closedir(d);
		expo_add(e, &f_fds, fds - 1, 0, NULL);	/* less the one reading the directory */
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		expo_add(e, &f_max_fds, (double)rl.rlim_cur, 0, NULL);
}

static void collect(struct expo *e)
{
	time_t now = time(NULL);

	machined_refresh();
	guests_begin();
	/* Removals are noticed within half the grace period. */
	cgroups_begin(now, m.grace / 2 < 1 ? 1 : m.grace / 2 > 60 ? 60 : m.grace / 2);
	collect_cgroup_events(e, now);
	collect_vcpu_threads(e);
	collect_guest_xstates(e);
	collect_guest_info(e);
	guests_sweep();
	collect_self(e);
	collect_process(e);
}

/*
 * A scrape allocates a label string per sample and frees them all: after a
 * burst of series glibc keeps the freed heap unless asked to give it back.
 */
static void release_memory(void)
{
	if (m.keys_cap > 4096) {	/* shrunk back; grown again as the maps need */
		free(m.keys);
		m.keys = NULL;
		m.keys_cap = 0;
	}
	malloc_trim(0);
}

void metrics_render(struct buf *out, enum expo_format format)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	m.scrapes[format]++;
	expo_reset(&m.scratch);
	collect(&m.scratch);
	for (int f = EXPO_TEXT; f <= EXPO_OPENMETRICS; f++) {
		struct label l[] = { { "format", f == EXPO_TEXT ? "text" : "openmetrics" } };

		expo_add(&m.scratch, &f_scrapes, (double)m.scrapes[f], 1, l);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	expo_add(&m.scratch, &f_series_folded, (double)expo_merge(&m.scratch), 0, NULL);
	expo_add(&m.scratch, &f_scrape_duration,
		 (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, 0, NULL);
	expo_render(&m.scratch, out, format);
	expo_reset(&m.scratch);
	release_memory();
}

void metrics_housekeep(void)
{
	expo_reset(&m.scratch);
	collect(&m.scratch);
	expo_reset(&m.scratch);
	release_memory();
}
