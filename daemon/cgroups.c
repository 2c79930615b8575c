/* cgroups.c: finds the cgroup v2 hierarchy (/sys/fs/cgroup or a hybrid's unified/) and names cgroup ids. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroups.h"
#include "chain.h"
#include "log.h"

struct cg_entry {
	struct cg_entry *next;	/* first: chain.h */
	uint64_t id;
	char *path;		/* relative to the root: "/" or "/a/b" */
	time_t gone_since;	/* 0 while it exists */
	unsigned int scan;	/* generation of the last scan that saw it */
};

#define CG_BUCKETS_MIN	4096
#define CG_MAX_LEVELS	64	/* of removed ancestors named from rmdir records */

static struct {
	char root[PATH_MAX];
	uint64_t root_id;
	struct cg_entry **buckets;	/* nbuckets, a power of two, at most two entries each on average */
	size_t nbuckets, n;
	unsigned int scan;	/* generation of the last complete scan */
	int may_rescan;		/* one rescan per collection */
	time_t last_scan;
	unsigned long long unreadable;	/* directories a scan could not open */
	int warned;
	int (*removed_lookup)(uint64_t id, uint64_t *parent, char *name, size_t size);
} cg;

static size_t entry_index(const void *e, size_t nb)
{
	return chain_index_u64(((const struct cg_entry *)e)->id, nb);
}

static void table_fit(void)
{
	chain_fit((void ***)&cg.buckets, &cg.nbuckets, cg.n, CG_BUCKETS_MIN, entry_index);
}

static struct cg_entry **bucket_of(uint64_t id)
{
	if (!cg.nbuckets)
		table_fit();
	return &cg.buckets[chain_index_u64(id, cg.nbuckets)];
}

static struct cg_entry *entry_get(uint64_t id, int create)
{
	struct cg_entry **b = bucket_of(id), *e;

	for (e = *b; e; e = e->next)
		if (e->id == id)
			return e;
	if (!create)
		return NULL;
	table_fit();
	b = bucket_of(id);
	e = xcalloc(1, sizeof(*e));
	e->id = id;
	e->next = *b;
	*b = e;
	cg.n++;
	return e;
}

int cgroups_find_mount(const char *mountinfo, char *out, size_t size)
{
	char line[4096], mnt[PATH_MAX], fstype[64];
	int found = 0;
	FILE *f = fopen(mountinfo, "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - ");

		/* id parent maj:min root mountpoint ... - fstype source opts */
		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup2"))
			continue;
		/* A host's own /sys/fs/cgroup wins over any other cgroup2 mount. */
		if (!found || strcmp(mnt, "/sys/fs/cgroup") == 0) {
			snprintf(out, size, "%s", mnt);
			found = 1;
		}
	}
	fclose(f);
	return found ? 0 : -ENOENT;
}

int cgroups_init(const char *root)
{
	struct stat st;
	int err;

	if (root && *root) {
		snprintf(cg.root, sizeof(cg.root), "%s", root);
	} else if ((err = cgroups_find_mount("/proc/self/mountinfo", cg.root,
					     sizeof(cg.root))) < 0) {
		log_error("no cgroup v2 hierarchy mounted (looked for cgroup2 in /proc/self/mountinfo)");
		return err;
	}
	if (stat(cg.root, &st) < 0) {
		err = -errno;
		log_error("cgroup v2 root %s: %s", cg.root, strerror(errno));
		return err;
	}
	log_info("cgroup v2 hierarchy at %s", cg.root);
	return 0;
}

static void entry_free_parts(void *e)
{
	free(((struct cg_entry *)e)->path);
}

void cgroups_fini(void)
{
	chain_free((void ***)&cg.buckets, &cg.nbuckets, entry_free_parts);
	cg.n = 0;
}

const char *cgroups_root(void)
{
	return cg.root;
}

static void record(uint64_t id, const char *rel, unsigned int scan)
{
	struct cg_entry *e = entry_get(id, 1);

	if (!e->path || strcmp(e->path, rel)) {
		free(e->path);
		e->path = xstrdup(rel);
	}
	e->gone_since = 0;
	e->scan = scan;
}

/* A directory the walk could not open: its subtree is not known, so this scan proves no removal. */
static void unreadable(const char *rel, int err, int *partial)
{
	*partial = 1;
	cg.unreadable++;
	if (!cg.warned++)
		log_warn("cgroup %s%s: %s; cgroups below it are not named, and no cgroup is taken "
			 "as removed while a scan is incomplete (logged once)", cg.root, rel, strerror(err));
	else
		log_debug("cgroup %s%s: %s", cg.root, rel, strerror(err));
}

/* Walks dirfd (the cgroup at rel) recording every directory's inode number: the cgroup id. */
static void walk(int dir_fd, char *rel, size_t len, unsigned int scan, int *partial)
{
	DIR *d = fdopendir(dir_fd);
	struct dirent *de;

	if (!d) {
		unreadable(len ? rel : "/", errno, partial);
		close(dir_fd);
		return;
	}
	while ((de = readdir(d))) {
		struct stat st;
		size_t n;
		int fd;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		n = strlen(de->d_name);
		if (len + 1 + n >= PATH_MAX) {
			unreadable(rel, ENAMETOOLONG, partial);
			continue;
		}
		rel[len] = '/';
		memcpy(rel + len + 1, de->d_name, n + 1);
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			if (errno != ENOENT)	/* removed meanwhile: nothing to know */
				unreadable(rel, errno, partial);
			if (fd >= 0)
				close(fd);
			rel[len] = '\0';
			continue;
		}
		record((uint64_t)st.st_ino, rel, scan);
		walk(fd, rel, len + 1 + n, scan, partial);
		rel[len] = '\0';
	}
	closedir(d);
}

static void rescan(void)
{
	char rel[PATH_MAX] = "";
	struct stat st;
	int fd = open(cg.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), partial = 0;
	time_t now = time(NULL);
	unsigned int scan = cg.scan + 1;

	cg.may_rescan = 0;
	cg.last_scan = now;
	if (fd < 0 || fstat(fd, &st) < 0) {
		log_warn("cgroup v2 root %s: %s", cg.root, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	cg.root_id = (uint64_t)st.st_ino;
	record(cg.root_id, "/", scan);
	walk(fd, rel, 0, scan, &partial);
	if (partial)
		return;	/* what it saw is recorded; what it did not see is not proven gone */
	cg.scan = scan;
	for (size_t i = 0; i < cg.nbuckets; i++)
		for (struct cg_entry *e = cg.buckets[i]; e; e = e->next)
			if (e->scan != cg.scan && !e->gone_since)
				e->gone_since = now;
}

void cgroups_begin(time_t now, time_t rescan_every)
{
	cg.may_rescan = 1;
	if (now - cg.last_scan >= rescan_every)
		rescan();	/* notices removed cgroups */
}

unsigned int cgroups_scan_generation(void)
{
	return cg.scan;
}

unsigned long long cgroups_unreadable(void)
{
	return cg.unreadable;
}

/*
 * The path of a removed cgroup from the rmdir records: its parent's path and
 * its name, the parent known to the cache or itself removed and recorded.
 */
static const char *removed_path(uint64_t id, int levels)
{
	char name[256];
	uint64_t parent;
	const char *pp;
	struct cg_entry *e;

	if (!cg.removed_lookup || levels > CG_MAX_LEVELS ||
	    cg.removed_lookup(id, &parent, name, sizeof(name)) < 0 || !name[0] || strchr(name, '/'))
		return NULL;
	e = entry_get(parent, 0);
	pp = e ? e->path : removed_path(parent, levels + 1);
	if (!pp)
		return NULL;	/* outside the root */
	e = entry_get(id, 1);
	free(e->path);
	e->path = xasprintf("%s/%s", strcmp(pp, "/") ? pp : "", name);
	e->gone_since = time(NULL);
	return e->path;
}

enum cg_state cgroups_lookup(uint64_t id, int may_rescan, const char **path)
{
	struct cg_entry *e = entry_get(id, 0);

	if (!e && may_rescan && cg.may_rescan) {
		rescan();
		e = entry_get(id, 0);
	}
	if (!e && removed_path(id, 0))
		e = entry_get(id, 0);
	*path = e ? e->path : NULL;
	if (!e || !e->path)
		return CG_UNKNOWN;
	return e->gone_since ? CG_GONE : CG_ALIVE;
}

void cgroups_set_removed_lookup(int (*lookup)(uint64_t id, uint64_t *parent, char *name, size_t size))
{
	cg.removed_lookup = lookup;
}

int cgroups_gone_for(uint64_t id, time_t now, time_t grace)
{
	struct cg_entry *e = entry_get(id, 0);

	return e && e->gone_since && now - e->gone_since >= grace;
}

void cgroups_expire(time_t now, time_t grace)
{
	for (size_t i = 0; i < cg.nbuckets; i++) {
		struct cg_entry **pp = &cg.buckets[i], *e;

		while ((e = *pp)) {
			if (e->gone_since && now - e->gone_since >= 2 * grace + 1) {
				*pp = e->next;
				free(e->path);
				free(e);
				cg.n--;
			} else {
				pp = &e->next;
			}
		}
	}
	table_fit();	/* a table a burst of cgroups grew shrinks */
}

int cgroups_path_of_pid(pid_t pid, char *out, size_t size)
{
	char name[64], line[PATH_MAX + 32];
	int err = -ENOENT;
	FILE *f;

	snprintf(name, sizeof(name), "/proc/%d/cgroup", (int)pid);
	f = fopen(name, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, size, "%s", line + 3);
			err = 0;
			break;
		}
	}
	fclose(f);
	return err;
}

static int all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

static int has_suffix(const char *s, size_t n, const char *suffix)
{
	size_t m = strlen(suffix);

	return n >= m && !memcmp(s + n - m, suffix, m);
}

/* "<prefix><64 hex>.scope" (systemd driver) or "<64 hex>" (cgroupfs driver) -> the id. */
static int container_id_of(const char *c, size_t n, char out[65])
{
	static const char *const prefixes[] = { "cri-containerd-", "crio-", "docker-", "libpod-" };

	if (n == 64 && all_hex(c, 64)) {
		memcpy(out, c, 64);
		out[64] = '\0';
		return 1;
	}
	if (!has_suffix(c, n, ".scope"))
		return 0;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t pl = strlen(prefixes[i]);

		if (n == pl + 64 + 6 && !strncmp(c, prefixes[i], pl) && all_hex(c + pl, 64)) {
			memcpy(out, c + pl, 64);
			out[64] = '\0';
			return 1;
		}
	}
	return 0;
}

/* "kubepods[-<qos>]-pod<uid>.slice" (systemd, _ for -) or "pod<uid>" (cgroupfs) -> the uid. */
static int pod_uid_of(const char *c, size_t n, char out[64])
{
	const char *p = NULL;
	size_t len;

	if (!strncmp(c, "kubepods", 8) && has_suffix(c, n, ".slice")) {
		for (const char *q = c; q + 4 <= c + n; q++)
			if (!strncmp(q, "-pod", 4))
				p = q + 4;
		if (!p)
			return 0;
		len = (size_t)(c + n - 6 - p);
	} else if (n == 39 && !strncmp(c, "pod", 3)) {
		p = c + 3;
		len = 36;
	} else {
		return 0;
	}
	if (len != 36)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char ch = p[i] == '_' ? '-' : p[i];

		if (!isxdigit((unsigned char)ch) && ch != '-')
			return 0;
		out[i] = ch;
	}
	out[len] = '\0';
	return 1;
}

void cgroups_describe(const char *path, struct cgroup_desc *d)
{
	static const char *const unit_suffixes[] = { ".service", ".scope", ".slice", ".socket",
						     ".mount", ".swap" };

	memset(d, 0, sizeof(*d));
	for (const char *c = path; *c; ) {
		size_t n;

		while (*c == '/')
			c++;
		n = strcspn(c, "/");
		if (!n)
			break;
		for (size_t i = 0; i < sizeof(unit_suffixes) / sizeof(unit_suffixes[0]); i++)
			/* the innermost unit that is not a slice, else the innermost slice */
			if (has_suffix(c, n, unit_suffixes[i]) && n < sizeof(d->unit) &&
			    (strcmp(unit_suffixes[i], ".slice") || !d->unit[0] ||
			     has_suffix(d->unit, strlen(d->unit), ".slice")))
				snprintf(d->unit, sizeof(d->unit), "%.*s", (int)n, c);
		pod_uid_of(c, n, d->pod_uid);
		container_id_of(c, n, d->container_id);
		c += n;
	}
}

struct cgroup_filter {
	long depth;
	regex_t *include, *exclude;
	size_t ninclude, nexclude;
};

static regex_t *compile_all(char **patterns, size_t n, const char *what, char *err, size_t errlen)
{
	regex_t *re = xcalloc(n, sizeof(*re));

	for (size_t i = 0; i < n; i++) {
		int rc = regcomp(&re[i], patterns[i], REG_EXTENDED | REG_NOSUB);

		if (rc) {
			char msg[128];

			regerror(rc, &re[i], msg, sizeof(msg));
			snprintf(err, errlen, "cgroups.%s: \"%s\": %s", what, patterns[i], msg);
			while (i--)
				regfree(&re[i]);
			free(re);
			return NULL;
		}
	}
	return re;
}

struct cgroup_filter *cgroups_filter_new(long depth, char **include, size_t ninclude,
					 char **exclude, size_t nexclude, char *err, size_t errlen)
{
	struct cgroup_filter *f = xcalloc(1, sizeof(*f));

	f->depth = depth;
	f->include = compile_all(include, ninclude, "include", err, errlen);
	f->ninclude = f->include ? ninclude : 0;
	f->exclude = f->include ? compile_all(exclude, nexclude, "exclude", err, errlen) : NULL;
	f->nexclude = f->exclude ? nexclude : 0;
	if (!f->include || !f->exclude) {
		cgroups_filter_free(f);
		return NULL;
	}
	return f;
}

void cgroups_filter_free(struct cgroup_filter *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->ninclude; i++)
		regfree(&f->include[i]);
	for (size_t i = 0; i < f->nexclude; i++)
		regfree(&f->exclude[i]);
	free(f->include);
	free(f->exclude);
	free(f);
}

static int matches_any(const regex_t *re, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (regexec(&re[i], path, 0, NULL, 0) == 0)
			return 1;
	return 0;
}

const char *cgroups_label(const struct cgroup_filter *f, const char *path, char *buf, size_t size)
{
	const char *p = path;

	if ((f->ninclude && !matches_any(f->include, f->ninclude, path)) ||
	    matches_any(f->exclude, f->nexclude, path))
		return "";
	if (f->depth <= 0)
		return path;
	/* "/a/b/c" at depth 2 is "/a/b" */
	for (long level = 0; level < f->depth && *p; level++) {
		p++;
		p += strcspn(p, "/");
	}
	snprintf(buf, size, "%.*s", (int)(p - path), path);
	return buf[0] ? buf : "/";
}
