/* guests.c: names KVM guests from /proc (QEMU -name, libvirt scope, comm-pid) and vCPUs from thread names. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroups.h"
#include "chain.h"
#include "expo.h"
#include "guests.h"
#include "log.h"
#include "machined.h"

/* The cached guests: a list for walking, a table by pid for the lookups (one per vCPU thread). */
static struct {
	struct guest *list;
	struct guest **buckets;
	size_t nbuckets, n;
} cache;

static size_t pid_index(pid_t pid, size_t nb)
{
	return chain_index_u64((uint64_t)pid, nb);
}

static size_t guest_index(const void *e, size_t nb)
{
	return pid_index(((const struct guest *)e)->pid, nb);
}

static void cache_fit(void)
{
	chain_fit((void ***)&cache.buckets, &cache.nbuckets, cache.n, 64, guest_index);
}

static struct guest *cache_find(pid_t pid)
{
	struct guest *g = cache.nbuckets ? cache.buckets[pid_index(pid, cache.nbuckets)] : NULL;

	while (g && g->pid != pid)
		g = g->hnext;
	return g;
}

static void cache_add(struct guest *g)
{
	struct guest **b;

	cache_fit();
	b = &cache.buckets[pid_index(g->pid, cache.nbuckets)];
	g->hnext = *b;
	*b = g;
	cache.n++;
	g->next = cache.list;
	cache.list = g;
}

/* Out of the table; the caller takes it out of the list. */
static void cache_unlink(struct guest *g)
{
	struct guest **pp = &cache.buckets[pid_index(g->pid, cache.nbuckets)];

	while (*pp != g)
		pp = &(*pp)->hnext;
	*pp = g->hnext;
	cache.n--;
}

/*
 * QEMU's -name takes an option list: "guest=NAME,debug-threads=on", or a
 * bare "NAME[,...]" where the first element is the implied guest= key; a
 * literal comma is written ",,".  Returns the name, or NULL.
 */
static char *parse_name_opts(const char *opts)
{
	size_t n = strlen(opts);
	char *elem = xmalloc(n + 1), *name = NULL;
	int first = 1;

	for (const char *p = opts; ; first = 0) {
		size_t len = 0;

		/* one element, ",," unescaped */
		while (*p && !(*p == ',' && p[1] != ',')) {
			if (*p == ',')
				p++;
			elem[len++] = *p++;
		}
		elem[len] = '\0';
		if (strncmp(elem, "guest=", 6) == 0) {
			free(name);
			name = xstrdup(elem + 6);
		} else if (first && !strchr(elem, '=')) {
			name = xstrdup(elem);
		}
		if (!*p)
			break;
		p++;
	}
	free(elem);
	if (name && !*name) {
		free(name);
		name = NULL;
	}
	return name;
}

char *guest_cmdline_value(const char *args, size_t len, const char *flag)
{
	const char *end = args + len;
	size_t fl = strlen(flag);

	for (const char *a = args; a < end; a += strlen(a) + 1) {
		const char *next = a + strlen(a) + 1;

		if (!strncmp(a, flag, fl) && a[fl] == '=' && a[fl + 1])
			return xstrdup(a + fl + 1);
		if (!strcmp(a, flag) && next < end && *next)
			return xstrdup(next);
	}
	return NULL;
}

char *guest_name_from_cmdline(const char *args, size_t len)
{
	char *opts = guest_cmdline_value(args, len, "-name"), *name;

	if (!opts)
		opts = guest_cmdline_value(args, len, "--name");
	if (!opts)
		return NULL;
	name = parse_name_opts(opts);
	free(opts);
	return name;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* systemd unit-name escaping: "\x2d" -> "-". */
static void unescape_unit(char *s)
{
	char *w = s;

	for (char *r = s; *r; ) {
		if (r[0] == '\\' && r[1] == 'x' && hexval(r[2]) >= 0 && hexval(r[3]) >= 0) {
			*w++ = (char)(hexval(r[2]) << 4 | hexval(r[3]));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* "qemu-<id>-<name>" -> "<name>" */
static char *name_after_qemu_id(const char *s, size_t len)
{
	const char *p = s + 5, *end = s + len;

	if (len < 5 || strncmp(s, "qemu-", 5))
		return NULL;
	while (p < end && isdigit((unsigned char)*p))
		p++;
	if (p == s + 5 || p >= end || *p != '-' || p + 1 >= end)
		return NULL;
	return strndup(p + 1, (size_t)(end - p - 1));
}

/*
 * libvirt's cgroup layouts: systemd "machine.slice/machine-qemu\x2d<id>\x2d<name>.scope[/libvirt/...]"
 * and cgroupfs "/machine/qemu-<id>-<name>.libvirt-qemu[/...]".
 */
char *guest_name_from_cgroup(const char *path)
{
	char *copy = xstrdup(path), *name = NULL, *save = NULL;

	for (char *c = strtok_r(copy, "/", &save); c && !name; c = strtok_r(NULL, "/", &save)) {
		size_t n = strlen(c);

		if (strncmp(c, "machine-", 8) == 0 && n > 14 && strcmp(c + n - 6, ".scope") == 0) {
			c[n - 6] = '\0';
			unescape_unit(c + 8);
			name = name_after_qemu_id(c + 8, strlen(c + 8));
		} else if (n > 13 && strcmp(c + n - 13, ".libvirt-qemu") == 0) {
			name = name_after_qemu_id(c, n - 13);
		}
	}
	free(copy);
	return name;
}

/* QEMU "CPU <n>/KVM", Firecracker "fc_vcpu <n>", Cloud Hypervisor "vcpu<n>", crosvm "crosvm_vcpu<n>". */
int guest_vcpu_from_comm(const char *comm)
{
	static const char *const fmts[] = { "CPU %u/KVM%n", "fc_vcpu %u%n", "vcpu%u%n", "crosvm_vcpu%u%n" };
	size_t len = strlen(comm);

	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		unsigned int n;
		int end = -1;

		if (sscanf(comm, fmts[i], &n, &end) == 1 && end == (int)len && n < 65536)
			return (int)n;
	}
	return -1;
}

const char *guest_vmm_from_comm(const char *comm)
{
	if (strncmp(comm, "qemu", 4) == 0)
		return "qemu";
	if (strncmp(comm, "firecracker", 11) == 0)
		return "firecracker";
	if (strncmp(comm, "cloud-hyperviso", 15) == 0)
		return "cloud-hypervisor";
	if (strncmp(comm, "crosvm", 6) == 0)
		return "crosvm";
	return "other";
}

/* Reads a /proc file whole; returns its length or -errno. */
static ssize_t read_proc(const char *path, char *out, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, total = 0;

	if (fd < 0)
		return -errno;
	while ((size_t)total < size - 1 && (n = read(fd, out + total, size - 1 - total)) > 0)
		total += n;
	close(fd);
	out[total] = '\0';
	return total;
}

static int read_comm(pid_t pid, pid_t tid, char *out, size_t size)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, (int)tid);
	n = read_proc(path, out, size);
	if (n < 0)
		return (int)n;
	out[strcspn(out, "\n")] = '\0';
	return 0;
}

/* A process's start time; -ENOENT once it has exited, a zombie included (its cmdline reads empty). */
static int read_start_time(pid_t pid, unsigned long long *start)
{
	char path[64], stat[1024], state;
	const char *p;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((n = read_proc(path, stat, sizeof(stat))) < 0)
		return (int)n;
	/* comm may hold spaces and parentheses: fields count from the last ')' */
	p = strrchr(stat, ')');
	if (!p || sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			 &state, start) != 2)
		return -EINVAL;
	return state == 'Z' || state == 'X' ? -ENOENT : 0;
}

static void sanitize(char **s)
{
	char *clean = utf8_strdup(*s);

	free(*s);
	*s = clean;
}

static void guest_name_from_process(struct guest *g, const char *comm, const char *args, ssize_t n);

/* The naming chain, first hit wins: machined, libvirt's cgroup, QEMU -name, Firecracker --id, comm-pid. */
static void guest_name(struct guest *g, const char *comm, const char *args, ssize_t n)
{
	const struct machine *m = machined_lookup(g->pid);
	char *uuid = n > 0 ? guest_cmdline_value(args, (size_t)n, "-uuid") : NULL;

	free(g->domain);
	free(g->uuid);
	g->domain = NULL;
	g->uuid = xstrdup(m && m->uuid[0] ? m->uuid : uuid ? uuid : "");
	free(uuid);
	if (m) {
		g->name_source = "machined";
		g->domain = xstrdup(m->name);
	} else {
		guest_name_from_process(g, comm, args, n);
	}
	/* names enter here, whatever a user called a VM or a process: labels and JSON need UTF-8 */
	sanitize(&g->domain);
	sanitize(&g->uuid);
	g->name_gen++;
}

static void guest_name_from_process(struct guest *g, const char *comm, const char *args, ssize_t n)
{
	g->name_source = "libvirt-cgroup";
	if ((g->domain = guest_name_from_cgroup(g->cgroup)))
		return;
	g->name_source = "qemu-name";
	if (n > 0 && (g->domain = guest_name_from_cmdline(args, (size_t)n)))
		return;
	g->name_source = "firecracker-id";
	if (n > 0 && !strcmp(g->vmm, "firecracker") &&
	    (g->domain = guest_cmdline_value(args, (size_t)n, "--id")))
		return;
	g->name_source = "comm-pid";
	g->domain = xasprintf("%s-%d", comm, (int)g->pid);
}

static ssize_t read_cmdline(pid_t pid, char *args, size_t size)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	return read_proc(path, args, size);
}

/*
 * The guest of a process, from its comm, cgroup and command line; NULL and
 * -ENOENT where it exited meanwhile: what was read of a process that went
 * away between two reads (no cgroup, no -name) would name a guest wrongly.
 */
static struct guest *guest_load(pid_t pid, unsigned long long start, int *err)
{
	char comm[64], cgroup[PATH_MAX], args[8192];
	unsigned long long again;
	ssize_t nargs;
	struct guest *g;

	if ((*err = read_comm(pid, pid, comm, sizeof(comm))) < 0)
		return NULL;
	if (cgroups_path_of_pid(pid, cgroup, sizeof(cgroup)) < 0)
		snprintf(cgroup, sizeof(cgroup), "unknown");
	nargs = read_cmdline(pid, args, sizeof(args));
	*err = read_start_time(pid, &again);
	if (*err == 0 && again != start)
		*err = -ENOENT;		/* and the pid taken again */
	if (*err < 0) {
		if (*err == -ESRCH)
			*err = -ENOENT;
		return NULL;
	}
	g = xcalloc(1, sizeof(*g));
	g->pid = pid;
	g->start_time = start;
	g->cgroup = utf8_strdup(cgroup);
	g->vmm = guest_vmm_from_comm(comm);
	guest_name(g, comm, args, nargs);
	log_debug("guest pid %d: domain \"%s\" (%s), vmm %s, cgroup %s", (int)pid, g->domain,
		  g->name_source, g->vmm, g->cgroup);
	return g;
}

static void guest_free(struct guest *g)
{
	free(g->domain);
	free(g->uuid);
	free(g->cgroup);
	free(g);
}

int guests_lookup(pid_t pid, const struct guest **out)
{
	struct guest *g = cache_find(pid);
	unsigned long long start;
	int err;

	/* once a collection: a VM's threads and XSTATE_BV values all ask */
	if (g && g->used) {
		*out = g;
		return 0;
	}
	err = read_start_time(pid, &start);
	*out = NULL;
	if (err < 0)
		return err == -ESRCH ? -ENOENT : err;
	if (g && g->start_time == start) {
		/* registered with machined since it was first named */
		if (strcmp(g->name_source, "machined") && machined_lookup(pid)) {
			char comm[64], args[8192];

			if (read_comm(pid, pid, comm, sizeof(comm)) == 0)
				guest_name(g, comm, args, read_cmdline(pid, args, sizeof(args)));
		}
		g->used = 1;
		*out = g;
		return 0;
	}
	if (g) {	/* pid reused by another process */
		struct guest **pp = &cache.list;

		while (*pp != g)
			pp = &(*pp)->next;
		*pp = g->next;
		cache_unlink(g);
		guest_free(g);
	}
	g = guest_load(pid, start, &err);
	if (!g)
		return err;
	g->used = 1;
	cache_add(g);
	*out = g;
	return 0;
}

int guests_vcpu_label(pid_t pid, pid_t tid, char *out, size_t size)
{
	char comm[64];
	int err = read_comm(pid, tid, comm, sizeof(comm)), vcpu;

	if (err < 0)
		return err == -ESRCH ? -ENOENT : err;
	vcpu = guest_vcpu_from_comm(comm);
	if (vcpu < 0)
		snprintf(out, size, "none");
	else
		snprintf(out, size, "%d", vcpu);
	return 0;
}

void guests_begin(void)
{
	for (struct guest *g = cache.list; g; g = g->next)
		g->used = 0;
}

void guests_sweep(void)
{
	struct guest **pp = &cache.list, *g;

	while ((g = *pp)) {
		if (g->used) {
			pp = &g->next;
		} else {
			*pp = g->next;
			cache_unlink(g);
			guest_free(g);
		}
	}
	if (cache.nbuckets)
		cache_fit();	/* a table a burst grew shrinks */
}

const struct guest *guests_first(void)
{
	return cache.list;
}

void guests_fini(void)
{
	guests_begin();
	guests_sweep();
	free(cache.buckets);
	memset(&cache, 0, sizeof(cache));
}
