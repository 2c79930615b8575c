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
 * rescan_every seconds (that is how removals are noticed), and allows one
 * more rescan for ids not known yet.
 */
void cgroups_begin(time_t now, time_t rescan_every);

enum cg_state {
	CG_UNKNOWN,	/* not (yet) in the hierarchy under the root, nor recorded as removed */
	CG_ALIVE,
	CG_GONE,	/* removed: found missing by a complete scan, or named by its rmdir record */
};
/*
 * State and path (relative to the root: "/" for the root itself) of a
 * cgroup id.  An unknown id rescans the hierarchy if may_rescan and this
 * collection has not rescanned yet; then asks the rmdir records.  Only a
 * complete scan (every directory readable) proves a cgroup gone.
 */
enum cg_state cgroups_lookup(uint64_t id, int may_rescan, const char **path);
/* Bumped by every complete scan: an id unknown at generation g is worth one rescan at a later one. */
unsigned int cgroups_scan_generation(void);
/* Directories scans could not open, since start. */
unsigned long long cgroups_unreadable(void);
/* Where to ask for the parent id and name of a removed cgroup (the BPF side's rmdir record). */
void cgroups_set_removed_lookup(int (*lookup)(uint64_t id, uint64_t *parent, char *name, size_t size));
/* True when the cgroup was found gone at least grace seconds ago. */
int cgroups_gone_for(uint64_t id, time_t now, time_t grace);
/* Drops cache entries of cgroups gone for more than twice grace. */
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
