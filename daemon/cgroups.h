/* cgroups.h: cgroup v2 hierarchy discovery and id -> path resolution with a cache. */
#ifndef CGROUPS_H
#define CGROUPS_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Finds the cgroup v2 mount (root, if non-empty, overrides); -errno on failure. */
int cgroups_init(const char *root);
void cgroups_fini(void);
const char *cgroups_root(void);

/*
 * Starts a collection: rescans the hierarchy if the last scan is older than
 * rescan_every seconds (that is how removals are noticed), else allows one
 * rescan for an unknown id.
 */
void cgroups_begin(time_t now, time_t rescan_every);
/*
 * Path of the cgroup with this id relative to the v2 root ("/" for the
 * root); for a removed cgroup its last path, until cgroups_expire() forgets
 * it; NULL when unknown.  An unknown id rescans the hierarchy, at most once
 * per collection, and ids found missing are remembered (ids are never
 * reused), so misses cannot storm.
 */
const char *cgroups_path(uint64_t id);
/* Where to ask for the last path of an id the hierarchy no longer has (the BPF side's rmdir record). */
void cgroups_set_removed_lookup(int (*lookup)(uint64_t id, char *path, size_t size));
/* True when the cgroup was found gone more than grace seconds ago. */
int cgroups_gone_for(uint64_t id, time_t now, time_t grace);
/* Drops cache entries of cgroups gone more than grace seconds ago. */
void cgroups_expire(time_t now, time_t grace);

/* The v2 path of a process from /proc/PID/cgroup ("0::/path"); -errno when gone. */
int cgroups_path_of_pid(pid_t pid, char *out, size_t size);
/* What a cgroup path says about its workload; "" where it says nothing. */
struct cgroup_desc {
	char unit[256];		/* the innermost systemd unit: nginx.service, cri-containerd-<id>.scope */
	char pod_uid[64];	/* Kubernetes pod UID, with dashes (the systemd driver writes _) */
	char container_id[65];	/* containerd, CRI-O, Docker or Podman container id */
};

void cgroups_describe(const char *path, struct cgroup_desc *d);
/* The label for a path: the first depth levels of it (0: all); "" when excluded by the patterns. */
struct cgroup_filter;
struct cgroup_filter *cgroups_filter_new(long depth, char **include, size_t ninclude,
					 char **exclude, size_t nexclude, char *err, size_t errlen);
const char *cgroups_label(const struct cgroup_filter *f, const char *path, char *buf, size_t size);
void cgroups_filter_free(struct cgroup_filter *f);

/* The mount point of the v2 hierarchy found in a mountinfo file (for tests); -ENOENT if none. */
int cgroups_find_mount(const char *mountinfo, char *out, size_t size);

#endif /* CGROUPS_H */
