/* cgroups.c: finds the cgroup v2 hierarchy (/sys/fs/cgroup or a hybrid's unified/) and names cgroup ids. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroups.h"
#include "log.h"

struct cg_entry {
	uint64_t id;
	char *path;		/* NULL: never seen, only found missing */
	time_t gone_since;	/* 0 while it exists */
	unsigned int scan;	/* generation of the last scan that saw it */
	struct cg_entry *next;
};

#define CG_BUCKETS	4096

static struct {
	char root[PATH_MAX];
	struct cg_entry *buckets[CG_BUCKETS];
	unsigned int scan;
	int may_rescan;		/* one rescan per collection */
	time_t last_scan;
} cg;

static struct cg_entry **bucket_of(uint64_t id)
{
	return &cg.buckets[(id * 0x9e3779b97f4a7c15ull) >> 52];
}

static struct cg_entry *entry_get(uint64_t id, int create)
{
	struct cg_entry **b = bucket_of(id), *e;

	for (e = *b; e; e = e->next)
		if (e->id == id)
			return e;
	if (!create)
		return NULL;
	e = xcalloc(1, sizeof(*e));
	e->id = id;
	e->next = *b;
	*b = e;
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

void cgroups_fini(void)
{
	for (size_t i = 0; i < CG_BUCKETS; i++) {
		struct cg_entry *e = cg.buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e->path);
			free(e);
		}
		cg.buckets[i] = NULL;
	}
}

const char *cgroups_root(void)
{
	return cg.root;
}

static void record(uint64_t id, const char *rel)
{
	struct cg_entry *e = entry_get(id, 1);

	if (!e->path || strcmp(e->path, rel)) {
		free(e->path);
		e->path = xstrdup(rel);
	}
	e->gone_since = 0;
	e->scan = cg.scan;
}

/* Walks dirfd (the cgroup at rel) recording every directory's inode number: the cgroup id. */
static void walk(int dir_fd, char *rel, size_t len)
{
	DIR *d = fdopendir(dir_fd);
	struct dirent *de;

	if (!d) {
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
		if (len + 1 + n >= PATH_MAX)
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) < 0) {
			close(fd);
			continue;
		}
		rel[len] = '/';
		memcpy(rel + len + 1, de->d_name, n + 1);
		record((uint64_t)st.st_ino, rel);
		walk(fd, rel, len + 1 + n);
		rel[len] = '\0';
	}
	closedir(d);
}

static void rescan(void)
{
	char rel[PATH_MAX] = "";
	struct stat st;
	int fd = open(cg.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	time_t now = time(NULL);

	cg.may_rescan = 0;
	cg.last_scan = now;
	if (fd < 0 || fstat(fd, &st) < 0) {
		log_warn("cgroup v2 root %s: %s", cg.root, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	cg.scan++;
	record((uint64_t)st.st_ino, "/");
	walk(fd, rel, 0);
	for (size_t i = 0; i < CG_BUCKETS; i++)
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

const char *cgroups_path(uint64_t id)
{
	struct cg_entry *e = entry_get(id, 0);

	if (e)	/* known, or known gone: ids are never reused */
		return e->path;
	if (!cg.may_rescan)
		return NULL;
	rescan();
	e = entry_get(id, 0);
	if (e)
		return e->path;
	/* Existed when its event was counted, removed before this scan. */
	e = entry_get(id, 1);
	e->gone_since = time(NULL);
	return NULL;
}

int cgroups_gone_for(uint64_t id, time_t now, time_t grace)
{
	struct cg_entry *e = entry_get(id, 0);

	return e && e->gone_since && now - e->gone_since >= grace;
}

void cgroups_expire(time_t now, time_t grace)
{
	for (size_t i = 0; i < CG_BUCKETS; i++) {
		struct cg_entry **pp = &cg.buckets[i], *e;

		while ((e = *pp)) {
			if (e->gone_since && now - e->gone_since >= 2 * grace) {
				*pp = e->next;
				free(e->path);
				free(e);
			} else {
				pp = &e->next;
			}
		}
	}
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
