/* probes.c: loads the BPF object, keeps out what the kernel lacks or the config disables, attaches each probe. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/btf.h>

#include "fpu_exporter.h"
#include "fpu_exporter.skel.h"
#include "log.h"
#include "probes.h"

#define TRACEFS "/sys/kernel/tracing"
#define VMLINUX_BTF "/sys/kernel/btf/vmlinux"
#define KVM_BTF "/sys/kernel/btf/kvm"

enum toggle { T_FPU = 1, T_KVM = 2, T_SIGNALS = 4, T_COMPAT = 8 };

/*
 * One row a tracepoint, and up to two programs that count it: a BTF or raw
 * tracepoint program (btf: tp_btf/EVENT or raw_tp/EVENT, EVENT read from its
 * section; for a syscalls: row, raw sys_enter or sys_exit filtered by number)
 * and a classic tracepoint program.  The BTF one is preferred, but where
 * prefer_classic: on a tracepoint fired with preemption enabled, 7.x kernels
 * (7.3.4; not 6.18) run BTF and raw programs preemptibly behind a per-CPU
 * recursion guard and skip a run that finds it taken; perf's classic path
 * still runs with preemption off.  A syscalls: row's BTF program runs for
 * every syscall.  Either way the classic program serves only where this
 * process may open the perf event (perf_event_paranoid).
 */
struct probe {
	const char *tracepoint;		/* subsystem:event */
	const char *btf;		/* BTF or raw tracepoint program, or NULL */
	const char *classic;		/* classic tracepoint program, or NULL */
	int prefer_classic;
	unsigned int toggles;		/* enabled when any of these is on */
	struct bpf_program *prog;
	struct bpf_link *link;
	int enabled;
	unsigned int rejected;		/* R_BTF, R_CLASSIC: refused by this kernel's verifier */
	char why[128];
};

enum { R_BTF = 1, R_CLASSIC = 2 };


static struct probe probe_table[] = {
	{ .tracepoint = "x86_fpu:x86_fpu_regs_deactivated", .btf = "regs_deactivated", .toggles = T_FPU | T_KVM },
	{ .tracepoint = "x86_fpu:x86_fpu_regs_activated", .btf = "regs_activated", .toggles = T_FPU | T_KVM },
	{ .tracepoint = "x86_fpu:x86_fpu_copy_dst", .btf = "fpu_copy_dst", .toggles = T_FPU },
	{ .tracepoint = "x86_fpu:x86_fpu_dropped", .btf = "fpu_dropped", .toggles = T_FPU | T_KVM },
	{ .tracepoint = "sched:sched_process_exit", .btf = "thread_exit", .toggles = T_KVM },
	{ .tracepoint = "kvm:kvm_fpu", .btf = "kvm_fpu", .classic = "kvm_fpu_classic",
	  .prefer_classic = 1, .toggles = T_KVM },
	{ .tracepoint = "syscalls:sys_enter_arch_prctl", .btf = "sys_enter_arch_prctl_btf",
	  .classic = "sys_enter_arch_prctl", .prefer_classic = 1, .toggles = T_FPU },
	{ .tracepoint = "syscalls:sys_exit_arch_prctl", .btf = "sys_exit_arch_prctl_btf",
	  .classic = "sys_exit_arch_prctl", .prefer_classic = 1, .toggles = T_FPU },
	{ .tracepoint = "signal:signal_deliver", .btf = "signal_deliver", .toggles = T_SIGNALS },
	{ .tracepoint = "syscalls:sys_enter_rt_sigreturn", .btf = "sys_enter_rt_sigreturn_btf",
	  .classic = "sys_enter_rt_sigreturn", .prefer_classic = 1, .toggles = T_SIGNALS },
	{ .tracepoint = "raw_syscalls:sys_enter", .btf = "sys_enter_compat_sigreturn",
	  .classic = "sys_enter_compat_sigreturn_classic", .prefer_classic = 1, .toggles = T_COMPAT },
	{ .tracepoint = "x86_fpu:x86_fpu_xstate_check_failed", .btf = "xstate_check_failed", .toggles = T_SIGNALS },
	{ .tracepoint = "cgroup:cgroup_rmdir", .btf = "cgroup_rmdir", .toggles = T_FPU | T_SIGNALS },
	{ .tracepoint = "signal:signal_generate", .btf = "signal_generate", .toggles = T_SIGNALS },
};
#define NPROBES (sizeof(probe_table) / sizeof(probe_table[0]))

static struct {
	struct fpu_exporter_bpf *skel;
	struct btf *vmlinux;
	struct probe_status status[NPROBES];
	struct probe_maps maps;
	int map_fds[MAP__COUNT];
	struct probe_sizes sizes;
	int stats_fd;		/* BPF_ENABLE_STATS: run time counted while open */
	char libbpf_version[32];
	char libbpf_warning[256];	/* the first warning libbpf gave, for the error line */
	/* From libbpf's messages during a load: the program it failed on, and its verifier log. */
	char rejected_prog[64];
	char *verifier_log;
} pr = { .stats_fd = -1 };

/*
 * libbpf's warnings are logged line by line at debug level (a message may hold
 * many).  A failed program load is remembered, with the verifier's log, so
 * probes_init() can name it, log the log and load the others without it.
 */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char name[64], *msg, *end;
	const char *begin;

	if (level == LIBBPF_DEBUG)
		return 0;
	if (vasprintf(&msg, fmt, ap) < 0)
		die_oom();
	/* errno alone can mislead (ESRCH for no BTF): the load's error line names the first warning */
	if (!pr.libbpf_warning[0])
		snprintf(pr.libbpf_warning, sizeof(pr.libbpf_warning), "%.*s",
			 (int)strcspn(msg, "\n") < 200 ? (int)strcspn(msg, "\n") : 200, msg);
	if (strstr(msg, "BPF program load failed") && (begin = strstr(msg, "prog '")) &&
	    sscanf(begin, "prog '%63[^']'", name) == 1)
		snprintf(pr.rejected_prog, sizeof(pr.rejected_prog), "%s", name);
	if ((begin = strstr(msg, "-- BEGIN PROG LOAD LOG --\n"))) {
		free(pr.verifier_log);
		pr.verifier_log = xstrdup(begin + strlen("-- BEGIN PROG LOAD LOG --\n"));
		if ((end = strstr(pr.verifier_log, "-- END PROG LOAD LOG --")))
			*end = '\0';
	} else {
		/* libbpf starts its messages with "libbpf: " */
		log_lines(LOG_LVL_DEBUG, "libbpf", strncmp(msg, "libbpf: ", 8) ? msg : msg + 8);
	}
	free(msg);
	return 0;
}

/* A whole file, or NULL (errno set); no abort on a failed allocation: the caller goes without. */
static void *read_all(const char *path, size_t *len)
{
	struct stat st;
	size_t cap;
	char *data = NULL, *grown;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), saved;

	*len = 0;
	if (fd < 0)
		return NULL;
	/* sysfs gives a BTF file's size; one more byte tells its end */
	cap = fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size + 1 : 1 << 20;
	for (;;) {
		if (!data || *len == cap) {
			grown = realloc(data, data ? cap *= 2 : cap);
			if (!grown) {
				n = -1;
				errno = ENOMEM;
				break;
			}
			data = grown;
		}
		n = read(fd, data + *len, cap - *len);
		if (n <= 0)
			break;
		*len += (size_t)n;
	}
	saved = errno;
	close(fd);
	if (n < 0) {
		free(data);
		errno = saved;
		return NULL;
	}
	return data;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * A split BTF's type ids go on from its base's, and its string offsets from
 * the end of its base's strings: base types, split types, base strings and
 * split strings, in that order under one header, are one valid BTF.
 */
int btf_join_split(const char *base_path, const char *split_path)
{
	struct btf_header *bh, *sh, joined;
	size_t blen = 0, slen = 0;
	char *base = read_all(base_path, &blen), *split = base ? read_all(split_path, &slen) : NULL;
	int fd = -EINVAL;

	if (!base || !split) {
		fd = -errno;
		goto out;
	}
	bh = (struct btf_header *)base;
	sh = (struct btf_header *)split;
	if (blen < sizeof(*bh) || slen < sizeof(*sh) || bh->magic != BTF_MAGIC || sh->magic != BTF_MAGIC ||
	    bh->hdr_len > blen || sh->hdr_len > slen ||
	    (uint64_t)bh->hdr_len + bh->str_off + bh->str_len > blen ||
	    (uint64_t)bh->hdr_len + bh->type_off + bh->type_len > blen ||
	    (uint64_t)sh->hdr_len + sh->str_off + sh->str_len > slen ||
	    (uint64_t)sh->hdr_len + sh->type_off + sh->type_len > slen)
		goto out;
	joined = (struct btf_header){ .magic = BTF_MAGIC, .version = bh->version, .hdr_len = sizeof(joined),
				      .type_off = 0, .type_len = bh->type_len + sh->type_len,
				      .str_off = bh->type_len + sh->type_len, .str_len = bh->str_len + sh->str_len };
	fd = memfd_create("fpu_exporter_btf", MFD_CLOEXEC);
	if (fd < 0) {
		fd = -errno;
		goto out;
	}
	if (write_all(fd, &joined, sizeof(joined)) ||
	    write_all(fd, base + bh->hdr_len + bh->type_off, bh->type_len) ||
	    write_all(fd, split + sh->hdr_len + sh->type_off, sh->type_len) ||
	    write_all(fd, base + bh->hdr_len + bh->str_off, bh->str_len) ||
	    write_all(fd, split + sh->hdr_len + sh->str_off, sh->str_len)) {
		close(fd);
		fd = -EIO;
	}
out:
	free(base);
	free(split);
	return fd;
}

/* Is there a BTF tracepoint type for event, in vmlinux or a loaded module? */
static int have_btf_tracepoint(const char *event)
{
	char type[160];
	struct dirent *de;
	int found = 0;
	DIR *d;

	snprintf(type, sizeof(type), "btf_trace_%s", event);
	if (btf__find_by_name_kind(pr.vmlinux, type, BTF_KIND_TYPEDEF) > 0)
		return 1;
	d = opendir("/sys/kernel/btf");
	if (!d)
		return 0;
	while (!found && (de = readdir(d))) {
		char path[300];
		struct btf *mod;

		if (de->d_name[0] == '.' || !strcmp(de->d_name, "vmlinux"))
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/btf/%s", de->d_name);
		mod = btf__parse_split(path, pr.vmlinux);
		if (!mod)
			continue;
		found = btf__find_by_name_kind(mod, type, BTF_KIND_TYPEDEF) > 0;
		btf__free(mod);
	}
	closedir(d);
	return found;
}

static void tracefs_event_path(char *path, size_t size, const char *tracepoint, const char *file)
{
	const char *colon = strchr(tracepoint, ':');

	snprintf(path, size, TRACEFS "/events/%.*s/%s%s", (int)(colon - tracepoint),
		 tracepoint, colon + 1, file);
}

static int have_tracefs_event(const char *tracepoint)
{
	char path[256];

	tracefs_event_path(path, sizeof(path), tracepoint, "");
	return access(path, F_OK) == 0;
}

/*
 * May this process open the classic event?  Where perf_event_paranoid is
 * above 2 (Debian's and Ubuntu's 3), perf_event_open needs CAP_SYS_ADMIN,
 * which CAP_BPF and CAP_PERFMON alone do not give.
 */
static int classic_attachable(const char *tracepoint)
{
	struct perf_event_attr attr = { .type = PERF_TYPE_TRACEPOINT, .size = sizeof(attr) };
	char path[256];
	unsigned long long id;
	FILE *f;
	int fd, n;

	tracefs_event_path(path, sizeof(path), tracepoint, "/id");
	if (!(f = fopen(path, "re")))
		return 0;
	n = fscanf(f, "%llu", &id);
	fclose(f);
	if (n != 1)
		return 0;
	attr.config = id;
	attr.sample_period = 1;
	attr.wakeup_events = 1;
	fd = (int)syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0) {
		log_info("probe %s: perf_event_open refused (%s): a BTF or raw tracepoint program "
			 "serves it where one can", tracepoint, strerror(errno));
		return 0;
	}
	close(fd);
	return 1;
}

/* Classic tracepoints are attached by id, read from tracefs: mount it where missing. */
static void ensure_tracefs(void)
{
	if (access(TRACEFS "/events", F_OK) == 0)
		return;
	if (mount("tracefs", TRACEFS, "tracefs", 0, NULL) < 0)
		log_warn("tracefs is not mounted at " TRACEFS " and mounting it failed: %s; "
			 "classic tracepoints will not attach", strerror(errno));
	else
		log_info("mounted tracefs at " TRACEFS);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/*
 * Finds the text of the sigreturn syscalls (__x64_sys_rt_sigreturn,
 * __ia32_compat_sys_sigreturn, ...) in /proc/kallsyms: a symbol ends where
 * the next higher address starts.  Returns the number of ranges.
 */
static unsigned int find_sigreturn_text(volatile __u64 (*ranges)[2], unsigned int max)
{
	char line[512], name[256];
	unsigned long long addr;
	unsigned int n = 0;
	int open_range = 0;
	FILE *f = fopen("/proc/kallsyms", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char type;

		if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3)
			continue;
		if (open_range && addr > ranges[n][0]) {
			ranges[n++][1] = addr;
			open_range = 0;
		}
		if (open_range || n == max || addr == 0 || (type != 't' && type != 'T'))
			continue;
		if (!ends_with(name, "sys_rt_sigreturn") && !ends_with(name, "sys_sigreturn"))
			continue;
		if (n && ranges[n - 1][0] == addr)
			continue;	/* an alias of the last one */
		ranges[n][0] = addr;
		open_range = 1;
	}
	fclose(f);
	return n;
}

static long clamp_entries(long v, long lo, long hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/*
 * Map sizes: bpf.* settings, or (0) sized by CPU count so the maps' kernel
 * memory stays near 60 MiB at 256 CPUs (README, "Memory").  A per-CPU entry
 * costs its value once per possible CPU.
 */
static void size_maps(const struct config *cfg, struct probe_sizes *sz)
{
	long cpus = libbpf_num_possible_cpus();

	if (cpus < 1)
		cpus = 1;
	sz->cgroups = cfg->bpf_max_cgroups ? cfg->bpf_max_cgroups :
		      clamp_entries((24L << 20) / (16 * cpus + 64), 1024, 16384);
	sz->xstates = cfg->bpf_max_xstates ? cfg->bpf_max_xstates :
		      clamp_entries((24L << 20) / (8 * cpus + 64), 2048, 32768);
	sz->guest_xstates = cfg->bpf_max_guest_xstates ? cfg->bpf_max_guest_xstates :
			    clamp_entries((8L << 20) / (8 * cpus + 64), 512, 4096);
	sz->vcpu_threads = cfg->bpf_max_vcpu_threads ? cfg->bpf_max_vcpu_threads : 8192;
	sz->removed_cgroups = cfg->bpf_max_removed_cgroups ? cfg->bpf_max_removed_cgroups : 4096;
	bpf_map__set_max_entries(pr.skel->maps.cgroup_hot, (__u32)sz->cgroups);
	bpf_map__set_max_entries(pr.skel->maps.cgroup_rare, (__u32)sz->cgroups);
	bpf_map__set_max_entries(pr.skel->maps.cgroup_xstates, (__u32)sz->xstates);
	bpf_map__set_max_entries(pr.skel->maps.guest_xstates, (__u32)sz->guest_xstates);
	bpf_map__set_max_entries(pr.skel->maps.vcpu_threads, (__u32)sz->vcpu_threads);
	bpf_map__set_max_entries(pr.skel->maps.removed_cgroups, (__u32)sz->removed_cgroups);
	log_info("BPF maps for %ld CPUs: %ld cgroups, %ld cgroup XSTATE_BV values, %ld vCPU threads, "
		 "%ld guest XSTATE_BV values, %ld removed cgroup names", cpus, sz->cgroups, sz->xstates,
		 sz->vcpu_threads, sz->guest_xstates, sz->removed_cgroups);
}

static unsigned int toggles_of(const struct config *cfg)
{
	return (cfg->probe_fpu ? T_FPU : 0) | (cfg->probe_kvm ? T_KVM : 0) |
	       (cfg->probe_signals ? T_SIGNALS : 0) | (cfg->sigreturn_compat ? T_COMPAT : 0);
}

/*
 * Can the BTF program attach here?  A tp_btf program needs its event's BTF
 * type; a raw_tp one only the event.  EVENT is its section's (tp_btf/EVENT).
 */
static int btf_attachable(const struct probe *p)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(pr.skel->obj, p->btf);
	const char *event = prog ? strchr(bpf_program__section_name(prog), '/') : NULL;

	if (!event || (p->rejected & R_BTF))
		return 0;
	return have_btf_tracepoint(event + 1) ||
	       (bpf_program__type(prog) == BPF_PROG_TYPE_RAW_TRACEPOINT && have_tracefs_event(p->tracepoint));
}

/* The program that serves probe p, or NULL: the BTF one unless prefer_classic and perf allows. */
static const char *choose_program(struct probe *p)
{
	int classic = p->classic && !(p->rejected & R_CLASSIC) && have_tracefs_event(p->tracepoint);
	int btf = p->btf && btf_attachable(p);

	if (classic && p->prefer_classic && (!btf || classic_attachable(p->tracepoint)))
		return p->classic;
	if (btf && p->prefer_classic && p->classic)
		log_info("probe %s: served by %s instead of the classic tracepoint", p->tracepoint, p->btf);
	return btf ? p->btf : classic ? p->classic : NULL;
}

/* Picks which program, if any, serves each enabled probe; every other program stays unloaded. */
static void select_programs(unsigned int toggles)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, pr.skel->obj)
		bpf_program__set_autoload(prog, false);
	for (size_t i = 0; i < NPROBES; i++) {
		struct probe *p = &probe_table[i];
		const char *chosen;

		p->enabled = (p->toggles & toggles) != 0;
		p->prog = NULL;
		if (!p->enabled)
			continue;
		chosen = choose_program(p);
		if (!chosen && p->rejected)
			continue;	/* why says it */
		if (!chosen) {
			snprintf(p->why, sizeof(p->why), "tracepoint not in this kernel");
			log_warn("probe %s: tracepoint not in this kernel, skipped", p->tracepoint);
			continue;
		}
		p->prog = bpf_object__find_program_by_name(pr.skel->obj, chosen);
		bpf_program__set_autoload(p->prog, true);
	}
}

/*
 * The daemon's PID namespace, so the programs give VMM ids as this process's
 * /proc shows them.  The initial namespace has a fixed inode (PROC_PID_INIT_INO).
 */
static void configure_pidns(void)
{
	struct stat st;

	if (stat("/proc/self/ns/pid", &st) < 0 || st.st_ino == 0xEFFFFFFCu)
		return;
	pr.skel->rodata->pidns_inum = (__u32)st.st_ino;
	log_info("in a PID namespace (%lu): VMs of this namespace and those below it are seen",
		 (unsigned long)st.st_ino);
}

/* signal_generate tells failed sigreturns by their stack: without symbol addresses it cannot. */
static void configure_bad_frame(void)
{
	struct probe *p = NULL;

	for (size_t i = 0; i < NPROBES; i++)
		if (!strcmp(probe_table[i].btf, "signal_generate"))
			p = &probe_table[i];
	if (!p || !p->prog)
		return;
	pr.skel->rodata->sigreturn_ranges =
		find_sigreturn_text(pr.skel->rodata->sigreturn_text, MAX_SIGRETURN_RANGES);
	if (pr.skel->rodata->sigreturn_ranges)
		return;
	snprintf(p->why, sizeof(p->why), "no sigreturn addresses in /proc/kallsyms");
	log_warn("probe %s: no sigreturn addresses in /proc/kallsyms (kernel.kptr_restrict?), "
		 "bad_frame failures are not counted", p->tracepoint);
	bpf_program__set_autoload(p->prog, false);
	p->prog = NULL;
}

/* The probe whose program the last load failed on, or NULL. */
static struct probe *rejected_probe(void)
{
	for (size_t i = 0; i < NPROBES; i++) {
		struct probe *p = &probe_table[i];

		if (p->prog && !strcmp(bpf_program__name(p->prog), pr.rejected_prog))
			return p;
	}
	return NULL;
}

/*
 * Names the rejected program, writes its verifier log (line by line at debug
 * level, its last lines at error level) and keeps it out of the next load.
 */
static void reject_program(struct probe *p, int err)
{
	const char *name = bpf_program__name(p->prog);
	char cause[96];

	log_warn("probe %s: this kernel refused program %s (%s); the other probes are loaded without it",
		 p->tracepoint, name, strerror(-err));
	log_verifier(name, pr.verifier_log ? pr.verifier_log : "", cause, sizeof(cause));
	snprintf(p->why, sizeof(p->why), "refused by the verifier: %s", cause[0] ? cause : strerror(-err));
	p->rejected |= p->classic && !strcmp(name, p->classic) ? R_CLASSIC : R_BTF;
	free(pr.verifier_log);
	pr.verifier_log = NULL;
}

static void attach_programs(void)
{
	for (size_t i = 0; i < NPROBES; i++) {
		struct probe *p = &probe_table[i];
		int err;

		if (!p->prog)
			continue;
		p->link = bpf_program__attach(p->prog);
		if (!p->link) {
			err = errno;
			snprintf(p->why, sizeof(p->why), "attach failed: %s", strerror(err));
			log_warn("probe %s: attach failed: %s", p->tracepoint, strerror(err));
			continue;
		}
		log_info("probe %s: attached (%s)", p->tracepoint, bpf_program__name(p->prog));
	}
}

static const char *kernel_release(void)
{
	static struct utsname u;

	if (!u.release[0] && uname(&u) < 0)
		snprintf(u.release, sizeof(u.release), "unknown");
	return u.release;
}

/*
 * Every program is a BTF tracepoint program (tp_btf) or needs BTF-typed
 * arguments: they came in Linux 5.5 (9e15db66136a, "bpf: Implement accurate
 * raw_tp context access via BTF").  Below that nothing can serve.
 */
static int kernel_too_old(void)
{
	unsigned int major = 0, minor = 0;

	if (sscanf(kernel_release(), "%u.%u", &major, &minor) != 2 || major > 5 ||
	    (major == 5 && minor >= 5))
		return 0;
	log_error("kernel %s: BPF programs on BTF tracepoints (tp_btf) are missing; they came in Linux 5.5",
		  kernel_release());
	return 1;
}

int probes_init(const struct config *cfg)
{
	LIBBPF_OPTS(bpf_object_open_opts, open_opts);
	char btf_path[64];
	int err, attached = 0, btf_fd = -1;

	snprintf(pr.libbpf_version, sizeof(pr.libbpf_version), "%u.%u",
		 libbpf_major_version(), libbpf_minor_version());
	libbpf_set_print(libbpf_log);
	if (access(VMLINUX_BTF, R_OK) < 0) {
		err = -errno;
		log_error("no kernel BTF at " VMLINUX_BTF " (%s): a kernel built with "
			  "CONFIG_DEBUG_INFO_BTF=y is required", strerror(-err));
		return err;
	}
	pr.vmlinux = btf__parse(VMLINUX_BTF, NULL);
	if (!pr.vmlinux) {
		err = -errno;
		log_error("reading kernel BTF " VMLINUX_BTF ": %s", strerror(-err));
		return err;
	}
	if (kernel_too_old()) {
		err = -ENOTSUP;
		goto fail;
	}
	ensure_tracefs();
	/*
	 * CO-RE against the kvm module's types: libbpf would read the module's
	 * BTF by id, which needs CAP_SYS_ADMIN; the same BTF read from sysfs,
	 * joined to vmlinux's, needs nothing more than the file.
	 */
	if (access(KVM_BTF, F_OK) == 0) {
		btf_fd = btf_join_split(VMLINUX_BTF, KVM_BTF);
		if (btf_fd < 0)
			log_warn("joining " VMLINUX_BTF " and " KVM_BTF ": %s; libbpf reads the module's BTF itself",
				 strerror(-btf_fd));
		else
			snprintf(btf_path, sizeof(btf_path), "/proc/self/fd/%d", btf_fd);
	}
	open_opts.btf_custom_path = btf_fd >= 0 ? btf_path : NULL;
	/* A program the kernel refuses is left out and the rest loaded again: at most once per probe. */
	for (size_t tries = 0;; tries++) {
		struct probe *p;

		pr.skel = fpu_exporter_bpf__open_opts(&open_opts);
		if (!pr.skel) {
			err = -errno;
			log_error("opening the BPF object: %s", strerror(-err));
			goto fail;
		}
		select_programs(toggles_of(cfg));
		size_maps(cfg, &pr.sizes);
		configure_bad_frame();
		configure_pidns();
		pr.rejected_prog[0] = '\0';
		pr.libbpf_warning[0] = '\0';
		err = fpu_exporter_bpf__load(pr.skel);
		if (!err)
			break;
		p = err != -EPERM && tries < NPROBES ? rejected_probe() : NULL;
		if (!p) {
			log_error("loading BPF programs: %s%s%s%s", strerror(-err),
				  err == -EPERM ? " (run as root, or with CAP_BPF, CAP_PERFMON and "
						  "CAP_SYS_RESOURCE)" : "",
				  err != -EPERM && pr.libbpf_warning[0] ? ": " : "",
				  err != -EPERM ? pr.libbpf_warning : "");
			goto fail;
		}
		reject_program(p, err);
		fpu_exporter_bpf__destroy(pr.skel);
		pr.skel = NULL;
	}
	btf__free(pr.vmlinux);	/* several MB, needed only to choose the programs */
	pr.vmlinux = NULL;
	if (btf_fd >= 0)
		close(btf_fd);
	btf_fd = -1;
	attach_programs();
	for (size_t i = 0; i < NPROBES; i++)
		attached += probe_table[i].link != NULL;
	if (!attached) {
		log_error("kernel %s: no probe could be loaded and attached (the log says why for each)",
			  kernel_release());
		err = -ENOENT;
		goto fail;
	}
	if (cfg->bpf_stats) {
		pr.stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		if (pr.stats_fd < 0)
			log_warn("bpf.stats_enabled: enabling BPF run-time statistics: %s", strerror(errno));
	}
	pr.maps = (struct probe_maps){
		.cgroup_hot = bpf_map__fd(pr.skel->maps.cgroup_hot),
		.cgroup_rare = bpf_map__fd(pr.skel->maps.cgroup_rare),
		.cgroup_xstates = bpf_map__fd(pr.skel->maps.cgroup_xstates),
		.guest_xstates = bpf_map__fd(pr.skel->maps.guest_xstates),
		.vcpu_threads = bpf_map__fd(pr.skel->maps.vcpu_threads),
		.map_full = bpf_map__fd(pr.skel->maps.map_full),
		.removed_cgroups = bpf_map__fd(pr.skel->maps.removed_cgroups),
		.xcomp_requests = bpf_map__fd(pr.skel->maps.xcomp_requests),
	};
	pr.map_fds[MAP_CGROUP_HOT] = pr.maps.cgroup_hot;
	pr.map_fds[MAP_CGROUP_RARE] = pr.maps.cgroup_rare;
	pr.map_fds[MAP_CGROUP_XSTATES] = pr.maps.cgroup_xstates;
	pr.map_fds[MAP_VCPU_THREADS] = pr.maps.vcpu_threads;
	pr.map_fds[MAP_GUEST_XSTATES] = pr.maps.guest_xstates;
	pr.map_fds[MAP_REMOVED_CGROUPS] = pr.maps.removed_cgroups;
	pr.map_fds[MAP_XCOMP_REQUESTS] = pr.maps.xcomp_requests;
	return 0;
fail:
	if (btf_fd >= 0)
		close(btf_fd);
	probes_fini();
	return err;
}

int probes_unprivileged_ok(void)
{
	__u64 key;
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	if (bpf_map_get_next_key(pr.maps.cgroup_hot, NULL, &key) < 0 && errno == EPERM)
		return 0;
	for (size_t i = 0; i < NPROBES; i++)
		if (probe_table[i].link)
			return !(bpf_obj_get_info_by_fd(bpf_program__fd(probe_table[i].prog), &info, &len) < 0 &&
				 errno == EPERM);
	return 1;
}

void probes_fini(void)
{
	if (pr.stats_fd >= 0)
		close(pr.stats_fd);
	pr.stats_fd = -1;
	for (size_t i = 0; i < NPROBES; i++) {
		bpf_link__destroy(probe_table[i].link);
		probe_table[i].link = NULL;
		probe_table[i].prog = NULL;
	}
	fpu_exporter_bpf__destroy(pr.skel);
	pr.skel = NULL;
	free(pr.verifier_log);
	pr.verifier_log = NULL;
	btf__free(pr.vmlinux);
	pr.vmlinux = NULL;
}

int probes_status(const struct probe_status **out)
{
	int n = 0;

	for (size_t i = 0; i < NPROBES; i++) {
		struct probe *p = &probe_table[i];
		struct probe_status *s = &pr.status[n];

		if (!p->enabled)
			continue;
		*s = (struct probe_status){
			.probe = p->tracepoint,
			.program = p->prog ? bpf_program__name(p->prog) : p->btf ? p->btf : p->classic,
			.attached = p->link != NULL,
			.why = p->why,
		};
		if (p->link) {
			struct bpf_prog_info info = { 0 };
			__u32 len = sizeof(info);

			if (bpf_obj_get_info_by_fd(bpf_program__fd(p->prog), &info, &len) == 0) {
				s->run_time_ns = info.run_time_ns;
				s->run_count = info.run_cnt;
				s->missed = info.recursion_misses;	/* 5.12+; counted whatever bpf_stats */
			}
		}
		n++;
	}
	*out = pr.status;
	return n;
}

const struct probe_maps *probes_maps(void)
{
	return &pr.maps;
}

int probes_map_fd(enum map_id id)
{
	return id < MAP__COUNT ? pr.map_fds[id] : -1;
}

const char *probes_libbpf_version(void)
{
	return pr.libbpf_version;
}
