/* testvmm.c: minimal KVM VMM whose vCPU threads do exactly N KVM_RUNs, ground truth for the exporter's end-to-end tests. */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define GUEST_MEM_SIZE	0x10000UL
#define GUEST_CODE_ADDR	0x1000UL
#define GUEST_STACK	0x8000UL
#define GUEST_IO_PORT	0x10
#define TSS_ADDR	0xfffbd000UL
#define MAX_VCPUS	256
#define STAT_NAME	"fpu_reload"

/*
 * Real-mode guest loop at GUEST_CODE_ADDR:
 *	1: out $0x10, %al
 *	   jmp 1b
 * Every KVM_RUN returns to user space with one KVM_EXIT_IO.
 */
static const uint8_t guest_code[] = { 0xe6, GUEST_IO_PORT, 0xeb, 0xfc };

/*
 * Rendezvous used with --hold-threads (threads stay alive, idle, after their
 * runs) and with --midway (threads stop after half their runs until the
 * main thread lets them go on).
 */
struct hold {
	bool enabled;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
	bool release;
	int mid_done;
	bool mid_release;
};

struct vcpu {
	int id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	unsigned long long runs;
	unsigned long long fpu_reload;
	pthread_t thread;
	struct hold *hold;
	const char *name_fmt;	/* thread name, %d the index */
	unsigned long long half;	/* --midway: stop after this many runs; else ULLONG_MAX */
	uint64_t cpuid_xcr0;	/* CPUID leaf 0xD.0 EDX:EAX set with KVM_SET_CPUID2 */
	uint64_t supported;	/* what KVM_GET_SUPPORTED_CPUID allows of it */
	uint64_t kvm_supported;	/* what KVM_SET_XCRS accepts (vcpu_probe_supported) */
	uint64_t xcr0_then;	/* --xcr0-then: XCR0 set at midway; 0 none */
	unsigned long rate;	/* --rate: KVM_RUNs per second after the runs, until killed; 0 none */
	/* KVM_RUNs issued and returned, for the stall report (atomic: read by the main thread) */
	unsigned long long issued, returned;
};

struct opts {
	const char *name;
	const char *comm;	/* the process name, to pass for another VMM */
	const char *vcpu_name;	/* printf format of vCPU thread names, %d the index */
	const char *go;		/* run only once this file exists */
	const char *ready;
	const char *midway;	/* after half the runs: report here, wait for resume */
	const char *resume;
	bool hold_threads;
	unsigned long rate;
	int nr_vcpus;
	uint64_t runs[MAX_VCPUS];
	int n_cpuid, n_xcr0, n_then;
	uint64_t cpuid_xcr0[MAX_VCPUS];
	uint64_t xcr0[MAX_VCPUS];
	uint64_t xcr0_then[MAX_VCPUS];
};

static void usage(void)
{
	fprintf(stderr,
		"usage: testvmm [-name guest=NAME[,opt=...]] --runs N0,N1[,N2...]\n"
		"               [--ready FILE] [--hold-threads] [--comm NAME] [--vcpu-name FMT]\n"
		"               [--id ID] [-uuid UUID] [--go FILE]\n"
		"               [--cpuid-xcr0 M0,M1,...] [--xcr0 X0,X1,...]\n"
		"               [--xcr0-then Y0,Y1,... --midway FILE --resume FILE] [--rate N]\n"
		"  -name NAME|guest=NAME,...  accepted and ignored (QEMU style)\n"
		"  --id ID, -uuid UUID        accepted and ignored (Firecracker, QEMU style)\n"
		"  --comm NAME                process name, as another VMM's (default testvmm)\n"
		"  --go FILE                  start the vCPUs only once FILE exists (30 s at most)\n"
		"  --vcpu-name FMT            vCPU thread names, %%d the index (default \"CPU %%d/KVM\")\n"
		"  --runs N0,N1,...           one vCPU per entry; vCPU i does N_i KVM_RUNs\n"
		"  --ready FILE               write the result lines to FILE (atomically)\n"
		"  --hold-threads             keep vCPU threads alive (idle) until exit\n"
		"  --cpuid-xcr0 M0,M1,...     vCPU i gets KVM_GET_SUPPORTED_CPUID with leaf 0xD.0\n"
		"                             EDX:EAX = M_i (KVM_SET_CPUID2)\n"
		"  --xcr0 X0,X1,...           KVM_SET_XCRS: vCPU i starts with XCR0 = X_i\n"
		"  --midway FILE              after half the runs, write the result lines to FILE\n"
		"  --resume FILE              then go on once FILE exists (60 s at most)\n"
		"  --xcr0-then Y0,Y1,...      at midway, vCPU i sets XCR0 = Y_i (KVM_SET_XCRS)\n"
		"  --rate N                   after its runs (reported with --ready), each vCPU goes\n"
		"                             on at N KVM_RUNs a second, paced, until killed\n"
		"  Values take C syntax (0x7); result lines then carry xcr0= (KVM_GET_XCRS),\n"
		"  cpuid_xcr0= and supported= (cpuid_xcr0 & KVM_GET_SUPPORTED_CPUID's 0xD.0), and\n"
		"  kvm_supported= (the bits KVM_SET_XCRS accepts: KVM's guest_supported_xcr0)\n");
	exit(2);
}

/* Print "testvmm: <what>: <strerror(errno)>" and exit 1. */
static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	fputs("testvmm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", strerror(err));
	exit(1);
}

static void __attribute__((noreturn, format(printf, 1, 2)))
fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("testvmm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* "V0,V1,...": decimal (base 10) or in C syntax (base 0: 0x7, 7); returns the count, or -1. */
static int parse_list(const char *arg, uint64_t *v, int base)
{
	const char *p = arg;
	int n = 0;

	for (;;) {
		char *end;

		if (n == MAX_VCPUS || *p < '0' || *p > '9')
			return -1;
		errno = 0;
		v[n++] = strtoull(p, &end, base);
		if (errno)
			return -1;
		if (*end == '\0')
			return n;
		if (*end != ',')
			return -1;
		p = end + 1;
	}
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--hold-threads")) {
			o->hold_threads = true;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		if (!strcmp(a, "-name"))
			o->name = argv[++i];
		else if (!strcmp(a, "--comm"))
			o->comm = argv[++i];
		else if (!strcmp(a, "--vcpu-name"))
			o->vcpu_name = argv[++i];
		else if (!strcmp(a, "--go"))
			o->go = argv[++i];
		else if (!strcmp(a, "--id") || !strcmp(a, "-uuid"))
			i++;
		else if (!strcmp(a, "--runs"))
			o->nr_vcpus = parse_list(argv[++i], o->runs, 10);
		else if (!strcmp(a, "--ready"))
			o->ready = argv[++i];
		else if (!strcmp(a, "--midway"))
			o->midway = argv[++i];
		else if (!strcmp(a, "--resume"))
			o->resume = argv[++i];
		else if (!strcmp(a, "--cpuid-xcr0"))
			o->n_cpuid = parse_list(argv[++i], o->cpuid_xcr0, 0);
		else if (!strcmp(a, "--xcr0"))
			o->n_xcr0 = parse_list(argv[++i], o->xcr0, 0);
		else if (!strcmp(a, "--rate"))
			o->rate = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(a, "--xcr0-then"))
			o->n_then = parse_list(argv[++i], o->xcr0_then, 0);
		else
			usage();
	}
	/* each per-vCPU list, when given, has one value per vCPU */
	if (o->n_cpuid < 0 || o->n_xcr0 < 0 || o->n_then < 0 ||
	    (o->n_cpuid && o->n_cpuid != o->nr_vcpus) ||
	    (o->n_xcr0 && o->n_xcr0 != o->nr_vcpus) ||
	    (o->n_then && o->n_then != o->nr_vcpus) ||
	    !o->midway != !o->resume || (o->n_then && !o->midway))
		usage();
	if ((o->name && (!o->name[0] || !strcmp(o->name, "guest="))) ||
	    o->nr_vcpus < 1 || (o->ready && !o->ready[0]) || o->rate > 1000000)
		usage();
	if (!o->vcpu_name)
		o->vcpu_name = "CPU %d/KVM";
	else if (!strstr(o->vcpu_name, "%d") || strchr(strstr(o->vcpu_name, "%d") + 2, '%'))
		usage();
}

static int kvm_open_vm(size_t *run_size)
{
	int kvm, vm, ret;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("open /dev/kvm");
	ret = ioctl(kvm, KVM_GET_API_VERSION, 0);
	if (ret < 0)
		die("KVM_GET_API_VERSION");
	if (ret != KVM_API_VERSION)
		fatal("KVM_GET_API_VERSION: unexpected version %d", ret);
	ret = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (ret < 0)
		die("KVM_GET_VCPU_MMAP_SIZE");
	*run_size = ret;
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");
	close(kvm);
	return vm;
}

static void vm_setup_memory(int vm)
{
	struct kvm_userspace_memory_region region;
	void *mem;

	/* Needed for real mode on Intel hosts; a no-op on AMD. */
	if (ioctl(vm, KVM_SET_TSS_ADDR, TSS_ADDR) < 0)
		die("KVM_SET_TSS_ADDR");
	mem = mmap(NULL, GUEST_MEM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap guest memory");
	memcpy((uint8_t *)mem + GUEST_CODE_ADDR, guest_code, sizeof(guest_code));

	memset(&region, 0, sizeof(region));
	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = GUEST_MEM_SIZE;
	region.userspace_addr = (uintptr_t)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
}

static void vcpu_create(int vm, struct vcpu *v)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	v->fd = ioctl(vm, KVM_CREATE_VCPU, (unsigned long)v->id);
	if (v->fd < 0)
		die("vcpu %d: KVM_CREATE_VCPU", v->id);
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      v->fd, 0);
	if (v->run == MAP_FAILED)
		die("mmap kvm_run");

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");

	memset(&regs, 0, sizeof(regs));
	regs.rip = GUEST_CODE_ADDR;
	regs.rsp = GUEST_STACK;
	regs.rflags = 0x2;
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");
}

/* KVM_SET_CPUID2: what KVM supports, with leaf 0xD.0 EDX:EAX = v->cpuid_xcr0. */
static void vcpu_set_cpuid(int vm_fd_kvm, struct vcpu *v)
{
	struct kvm_cpuid2 *cpuid;
	int nent = 256;
	uint32_t i;

	for (;;) {
		cpuid = calloc(1, sizeof(*cpuid) + nent * sizeof(cpuid->entries[0]));
		if (!cpuid)
			die("calloc cpuid");
		cpuid->nent = nent;
		if (ioctl(vm_fd_kvm, KVM_GET_SUPPORTED_CPUID, cpuid) == 0)
			break;
		if (errno != E2BIG)
			die("KVM_GET_SUPPORTED_CPUID");
		free(cpuid);
		nent *= 2;
	}
	for (i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		if (e->function != 0xd || e->index != 0)
			continue;
		v->supported = v->cpuid_xcr0 & (e->eax | (uint64_t)e->edx << 32);
		e->eax = (uint32_t)v->cpuid_xcr0;
		e->edx = (uint32_t)(v->cpuid_xcr0 >> 32);
		break;
	}
	if (i == cpuid->nent)
		fatal("vcpu %d: KVM_GET_SUPPORTED_CPUID has no leaf 0xD.0", v->id);
	if (ioctl(v->fd, KVM_SET_CPUID2, cpuid) < 0)
		die("vcpu %d: KVM_SET_CPUID2", v->id);
	free(cpuid);
}

static int vcpu_try_xcr0(const struct vcpu *v, uint64_t xcr0)
{
	struct kvm_xcrs xcrs;

	memset(&xcrs, 0, sizeof(xcrs));
	xcrs.nr_xcrs = 1;
	xcrs.xcrs[0].xcr = 0;
	xcrs.xcrs[0].value = xcr0;
	return ioctl(v->fd, KVM_SET_XCRS, &xcrs);
}

static void vcpu_set_xcr0(const struct vcpu *v, uint64_t xcr0)
{
	if (vcpu_try_xcr0(v, xcr0) < 0)
		die("vcpu %d: KVM_SET_XCRS 0x%llx", v->id, (unsigned long long)xcr0);
}

/*
 * The XCR0 bits KVM lets this vCPU enable (its guest_supported_xcr0), found
 * the way KVM enforces it: __kvm_set_xcr() refuses any bit outside it.  Each
 * group goes with what it needs (AVX: SSE; AVX-512's three bits: AVX; MPX
 * and AMX: both their bits); x87 is always allowed.  The caller sets XCR0
 * afterwards.
 */
static uint64_t vcpu_probe_supported(const struct vcpu *v)
{
	static const uint64_t groups[][2] = {	/* bits, what they need */
		{ 0x2, 0 }, { 0x4, 0x2 }, { 0x18, 0 }, { 0xe0, 0x6 }, { 0x60000, 0 },
	};
	uint64_t sup = 0;
	unsigned int b, g;

	for (g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
		if (vcpu_try_xcr0(v, 1 | groups[g][0] | groups[g][1]) == 0)
			sup |= groups[g][0];
	for (b = 1; b < 64; b++) {
		uint64_t bit = 1ull << b;

		if ((bit & 0x600fe) == 0 && vcpu_try_xcr0(v, 1 | bit) == 0)
			sup |= bit;
	}
	vcpu_set_xcr0(v, 1);
	/* x87 cannot be probed: KVM computes it as CPUID & what it supports */
	return sup | (v->supported & 1);
}

/* XCR0 as KVM holds it (KVM_GET_XCRS). */
static uint64_t vcpu_get_xcr0(const struct vcpu *v)
{
	struct kvm_xcrs xcrs;
	uint32_t i;

	memset(&xcrs, 0, sizeof(xcrs));
	if (ioctl(v->fd, KVM_GET_XCRS, &xcrs) < 0)
		die("vcpu %d: KVM_GET_XCRS", v->id);
	for (i = 0; i < xcrs.nr_xcrs; i++)
		if (xcrs.xcrs[i].xcr == 0)
			return xcrs.xcrs[i].value;
	fatal("vcpu %d: KVM_GET_XCRS returned no XCR0", v->id);
}

static void vcpu_check_exit(const struct vcpu *v, unsigned long long n)
{
	const struct kvm_run *run = v->run;

	if (run->exit_reason != KVM_EXIT_IO)
		fatal("vcpu %d: KVM_RUN #%llu: unexpected exit reason %u",
		      v->id, n, run->exit_reason);
	if (run->io.direction != KVM_EXIT_IO_OUT ||
	    run->io.port != GUEST_IO_PORT || run->io.size != 1 ||
	    run->io.count != 1)
		fatal("vcpu %d: KVM_RUN #%llu: unexpected I/O exit (dir %u port 0x%x size %u count %u)",
		      v->id, n, run->io.direction, run->io.port,
		      run->io.size, run->io.count);
}

static void hold_wait(struct hold *h)
{
	pthread_mutex_lock(&h->lock);
	h->done++;
	pthread_cond_broadcast(&h->cond);
	while (!h->release)
		pthread_cond_wait(&h->cond, &h->lock);
	pthread_mutex_unlock(&h->lock);
}

/* Half the runs done: wait for the main thread, then set the new XCR0 if asked. */
static void midway_wait(struct vcpu *v)
{
	struct hold *h = v->hold;

	pthread_mutex_lock(&h->lock);
	h->mid_done++;
	pthread_cond_broadcast(&h->cond);
	while (!h->mid_release)
		pthread_cond_wait(&h->cond, &h->lock);
	pthread_mutex_unlock(&h->lock);
	if (v->xcr0_then)
		vcpu_set_xcr0(v, v->xcr0_then);
}

/* --rate: KVM_RUNs paced on absolute deadlines, so a late wakeup does not lower the rate. */
static void __attribute__((noreturn)) vcpu_paced(struct vcpu *v)
{
	struct timespec next;
	long step = 1000000000L / (long)v->rate;
	unsigned long long n = v->runs;

	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;; n++) {
		next.tv_nsec += step;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
		if (ioctl(v->fd, KVM_RUN, 0) != 0)
			die("vcpu %d: KVM_RUN #%llu", v->id, n);
		vcpu_check_exit(v, n);
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	char comm[16];
	unsigned long long n;

	snprintf(comm, sizeof(comm), v->name_fmt, v->id);
	errno = pthread_setname_np(pthread_self(), comm);
	if (errno)
		die("pthread_setname_np");

	for (n = 0; n <= v->runs; n++) {
		if (n == v->half)
			midway_wait(v);
		if (n == v->runs)
			break;
		__atomic_store_n(&v->issued, n + 1, __ATOMIC_RELAXED);
		if (ioctl(v->fd, KVM_RUN, 0) != 0)
			die("vcpu %d: KVM_RUN #%llu", v->id, n);
		__atomic_store_n(&v->returned, n + 1, __ATOMIC_RELAXED);
		vcpu_check_exit(v, n);
	}

	if (v->rate) {
		/* counted as done for the report, then paced runs until the process exits */
		pthread_mutex_lock(&v->hold->lock);
		v->hold->done++;
		pthread_cond_broadcast(&v->hold->cond);
		pthread_mutex_unlock(&v->hold->lock);
		vcpu_paced(v);
	}
	if (v->hold->enabled)
		hold_wait(v->hold);
	return NULL;
}

/*
 * Waits (hold's lock held) until *count reaches nr.  Every 3 s without it,
 * says on stderr where each vCPU is, and names a KVM_RUN that has not come
 * back since the last look: a stall shows in the test's output as that.
 */
static void wait_count(struct hold *h, const int *count, int nr, const struct vcpu *vcpus,
		       const char *what)
{
	unsigned long long last[MAX_VCPUS];
	struct timespec until;
	int i;

	for (i = 0; i < nr; i++)
		last[i] = ULLONG_MAX;
	clock_gettime(CLOCK_REALTIME, &until);
	while (*count < nr) {
		until.tv_sec += 3;
		while (*count < nr && pthread_cond_timedwait(&h->cond, &h->lock, &until) != ETIMEDOUT)
			;
		if (*count >= nr)
			break;
		for (i = 0; i < nr; i++) {
			unsigned long long in = __atomic_load_n(&vcpus[i].issued, __ATOMIC_RELAXED);
			unsigned long long out = __atomic_load_n(&vcpus[i].returned, __ATOMIC_RELAXED);

			fprintf(stderr, "testvmm: waiting for %s: vcpu %d: %llu of %llu KVM_RUNs back%s\n",
				what, vcpus[i].id, out, vcpus[i].runs,
				in != out && in == last[i] ? ", the next one not back in 3 s" : "");
			last[i] = in;
		}
	}
}

/* Wait until every vCPU thread has issued its last KVM_RUN. */
static void wait_vcpus_done(struct vcpu *vcpus, int nr, struct hold *h)
{
	int i;

	if (!h->enabled && !vcpus[0].rate) {
		for (i = 0; i < nr; i++) {
			errno = pthread_join(vcpus[i].thread, NULL);
			if (errno)
				die("pthread_join");
		}
		return;
	}
	pthread_mutex_lock(&h->lock);
	wait_count(h, &h->done, nr, vcpus, "the runs");
	pthread_mutex_unlock(&h->lock);
}

static void release_vcpus(struct vcpu *vcpus, int nr, struct hold *h)
{
	int i;

	if (!h->enabled || vcpus[0].rate)
		return;	/* paced vCPUs end with the process */
	pthread_mutex_lock(&h->lock);
	h->release = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	for (i = 0; i < nr; i++)
		pthread_join(vcpus[i].thread, NULL);
}

static void pread_full(int fd, void *buf, size_t len, off_t off,
		       const char *what)
{
	ssize_t ret = pread(fd, buf, len, off);

	if (ret < 0)
		die("%s", what);
	if ((size_t)ret != len)
		fatal("%s: short read (%zd of %zu bytes)", what, ret, len);
}

/* Read one u64 stat of a vCPU through the binary stats interface. */
static unsigned long long vcpu_read_stat(int vcpu_fd, const char *name)
{
	struct kvm_stats_header hdr;
	struct kvm_stats_desc *desc;
	size_t desc_size;
	uint64_t value;
	char *descs;
	uint32_t i;
	int fd;

	fd = ioctl(vcpu_fd, KVM_GET_STATS_FD, NULL);
	if (fd < 0)
		die("KVM_GET_STATS_FD");
	pread_full(fd, &hdr, sizeof(hdr), 0, "read kvm_stats_header");

	desc_size = sizeof(*desc) + hdr.name_size;
	descs = calloc(hdr.num_desc, desc_size);
	if (!descs)
		die("calloc stats descriptors");
	pread_full(fd, descs, hdr.num_desc * desc_size, hdr.desc_offset,
		   "read kvm_stats_desc");

	for (i = 0; i < hdr.num_desc; i++) {
		desc = (struct kvm_stats_desc *)(descs + i * desc_size);
		if (strnlen(desc->name, hdr.name_size) == hdr.name_size ||
		    strcmp(desc->name, name))
			continue;
		if (desc->size < 1)
			fatal("stat %s: unexpected size %u", name, desc->size);
		pread_full(fd, &value, sizeof(value),
			   (off_t)hdr.data_offset + desc->offset,
			   "read kvm stats data");
		free(descs);
		close(fd);
		return value;
	}
	fatal("stat %s: not found among %u vCPU stats", name, hdr.num_desc);
}

/* KVM_GET_STATS_FD came in Linux 5.14 (cb082bfab59a, "KVM: stats: Add fd-based API to read binary stats data"). */
static int have_stats_fd(int vm)
{
	return ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) > 0;
}

/*
 * Before 5.14 the kernel's counter is only in debugfs, summed over the VM's
 * vCPUs: kvm/<pid>-<vm fd>/fpu_reload.
 */
static unsigned long long vm_debugfs_stat(int vm, const char *name)
{
	unsigned long long value;
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/debug/kvm/%d-%d/%s", (int)getpid(), vm, name);
	f = fopen(path, "re");
	if (!f)
		die("open %s (is debugfs mounted?)", path);
	if (fscanf(f, "%llu", &value) != 1)
		fatal("%s: not a number", path);
	fclose(f);
	return value;
}

static void start_vcpus(struct vcpu *vcpus, int from, int to)
{
	int i;

	for (i = from; i < to; i++) {
		errno = pthread_create(&vcpus[i].thread, NULL, vcpu_thread, &vcpus[i]);
		if (errno)
			die("pthread_create");
	}
}

/*
 * Without KVM_GET_STATS_FD: one vCPU at a time, the others out of KVM_RUN,
 * so each vCPU's fpu_reload is the change of the VM's sum across its runs.
 */
static void run_vcpus_one_by_one(struct vcpu *vcpus, int nr, struct hold *h, int vm)
{
	unsigned long long before;
	int i;

	fprintf(stderr, "testvmm: no KVM_GET_STATS_FD: vCPUs run one at a time, fpu_reload from debugfs\n");
	for (i = 0; i < nr; i++) {
		before = vm_debugfs_stat(vm, STAT_NAME);
		start_vcpus(vcpus, i, i + 1);
		if (h->enabled) {
			pthread_mutex_lock(&h->lock);
			while (h->done < i + 1)
				pthread_cond_wait(&h->cond, &h->lock);
			pthread_mutex_unlock(&h->lock);
		} else {
			errno = pthread_join(vcpus[i].thread, NULL);
			if (errno)
				die("pthread_join");
		}
		vcpus[i].fpu_reload = vm_debugfs_stat(vm, STAT_NAME) - before;
	}
}

static void write_ready(const char *path, const char *buf, size_t len)
{
	size_t plen = strlen(path) + sizeof(".tmp");
	char *tmp = malloc(plen);
	size_t off = 0;
	int fd;

	if (!tmp)
		die("malloc");
	snprintf(tmp, plen, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open %s", tmp);
	while (off < len) {
		ssize_t ret = write(fd, buf + off, len - off);

		if (ret < 0) {
			if (errno == EINTR)
				continue;
			die("write %s", tmp);
		}
		off += ret;
	}
	if (close(fd) < 0)
		die("close %s", tmp);
	if (rename(tmp, path) < 0)
		die("rename %s to %s", tmp, path);
	free(tmp);
}

/*
 * One line a vCPU: runs done so far, KVM's fpu_reload and, with xcr0 set,
 * XCR0 read back (KVM_GET_XCRS), the CPUID leaf 0xD.0 value set and the part
 * of it KVM supports.
 */
static void report(const struct vcpu *vcpus, int nr, const char *ready, bool midway, bool xcr0)
{
	size_t cap = (size_t)nr * 160, len = 0;
	char *buf = malloc(cap);
	int i;

	if (!buf)
		die("malloc");
	for (i = 0; i < nr; i++) {
		const struct vcpu *v = &vcpus[i];

		len += snprintf(buf + len, cap - len, "vcpu=%d runs=%llu fpu_reload=%llu",
				v->id, midway ? v->half : v->runs, v->fpu_reload);
		if (xcr0)
			len += snprintf(buf + len, cap - len,
					" xcr0=0x%llx cpuid_xcr0=0x%llx supported=0x%llx"
					" kvm_supported=0x%llx",
					(unsigned long long)vcpu_get_xcr0(v),
					(unsigned long long)v->cpuid_xcr0,
					(unsigned long long)v->supported,
					(unsigned long long)v->kvm_supported);
		len += snprintf(buf + len, cap - len, "\n");
	}
	fputs(buf, stdout);
	if (fflush(stdout) == EOF)
		die("write stdout");
	if (ready)
		write_ready(ready, buf, len);
	free(buf);
}

int main(int argc, char **argv)
{
	static struct vcpu vcpus[MAX_VCPUS];
	struct hold hold = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	};
	struct opts o;
	size_t run_size;
	sigset_t sigs;
	int vm, kvm, i, sig;
	bool xcr0;

	parse_args(argc, argv, &o);
	hold.enabled = o.hold_threads;
	if (o.comm && prctl(PR_SET_NAME, o.comm, 0, 0, 0) < 0)
		die("prctl PR_SET_NAME");

	/* Block before spawning threads so only sigwait() sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	errno = pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (errno)
		die("pthread_sigmask");

	vm = kvm_open_vm(&run_size);
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("open /dev/kvm");
	xcr0 = o.n_cpuid || o.n_xcr0 || o.n_then;
	vm_setup_memory(vm);
	for (i = 0; i < o.nr_vcpus; i++) {
		vcpus[i].id = i;
		vcpus[i].runs = o.runs[i];
		vcpus[i].run_size = run_size;
		vcpus[i].hold = &hold;
		vcpus[i].name_fmt = o.vcpu_name;
		vcpus[i].half = o.midway ? o.runs[i] / 2 : ULLONG_MAX;
		vcpus[i].rate = o.rate;
		vcpu_create(vm, &vcpus[i]);
		if (o.n_cpuid) {
			vcpus[i].cpuid_xcr0 = o.cpuid_xcr0[i];
			vcpu_set_cpuid(kvm, &vcpus[i]);
		}
		if (xcr0)
			vcpus[i].kvm_supported = vcpu_probe_supported(&vcpus[i]);
		if (o.n_xcr0)
			vcpu_set_xcr0(&vcpus[i], o.xcr0[i]);
		if (o.n_then)
			vcpus[i].xcr0_then = o.xcr0_then[i];
	}
	close(kvm);
	for (i = 0; o.go && access(o.go, F_OK) < 0; i++) {
		if (i == 3000)
			fatal("%s did not appear in 30 s", o.go);
		usleep(10000);
	}
	if (have_stats_fd(vm)) {
		start_vcpus(vcpus, 0, o.nr_vcpus);
		if (o.midway) {
			pthread_mutex_lock(&hold.lock);
			wait_count(&hold, &hold.mid_done, o.nr_vcpus, vcpus, "midway");
			pthread_mutex_unlock(&hold.lock);
			for (i = 0; i < o.nr_vcpus; i++)
				vcpus[i].fpu_reload = vcpu_read_stat(vcpus[i].fd, STAT_NAME);
			report(vcpus, o.nr_vcpus, o.midway, true, xcr0);
			for (i = 0; access(o.resume, F_OK) < 0; i++) {
				if (i == 6000)
					fatal("%s did not appear in 60 s", o.resume);
				usleep(10000);
			}
			pthread_mutex_lock(&hold.lock);
			hold.mid_release = true;
			pthread_cond_broadcast(&hold.cond);
			pthread_mutex_unlock(&hold.lock);
		}
		wait_vcpus_done(vcpus, o.nr_vcpus, &hold);
		for (i = 0; i < o.nr_vcpus; i++)
			vcpus[i].fpu_reload = vcpu_read_stat(vcpus[i].fd, STAT_NAME);
	} else {
		if (o.midway)
			fatal("--midway reads per-vCPU counters: it needs KVM_GET_STATS_FD (5.14)");
		run_vcpus_one_by_one(vcpus, o.nr_vcpus, &hold, vm);
	}
	report(vcpus, o.nr_vcpus, o.ready, false, xcr0);

	/* Stay alive, VM and vCPU fds open, until told to go. */
	do {
		errno = sigwait(&sigs, &sig);
	} while (errno == EINTR);
	if (errno)
		die("sigwait");
	release_vcpus(vcpus, o.nr_vcpus, &hold);
	return 0;
}
