/* test_cgroups.c: unit tests of cgroup v2 mount discovery and id -> path resolution over a directory tree. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cgroups.h"

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_find_mount(void **state)
{
	char mi[] = "/tmp/fpu_mountinfo.XXXXXX", out[256];
	int fd = mkstemp(mi);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	/* hybrid: v1 controllers plus v2 at unified/ (an optional field before "-") */
	write_file(mi,
		"30 24 0:26 / /sys/fs/cgroup rw,relatime shared:9 - tmpfs tmpfs rw,mode=755\n"
		"31 30 0:27 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw\n"
		"32 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n");
	assert_int_equal(cgroups_find_mount(mi, out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup/unified");
	/* unified: v2 at /sys/fs/cgroup wins over any other cgroup2 mount */
	write_file(mi,
		"40 24 0:40 / /run/other rw - cgroup2 cgroup2 rw\n"
		"41 24 0:41 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
	assert_int_equal(cgroups_find_mount(mi, out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup");
	write_file(mi, "30 24 0:26 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n");
	assert_int_equal(cgroups_find_mount(mi, out, sizeof(out)), -2 /* -ENOENT */);
	unlink(mi);
}

static uint64_t ino_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_ino;
}

static const char *path_of(uint64_t id, enum cg_state want)
{
	const char *path = NULL;

	assert_int_equal(cgroups_lookup(id, 1, &path), want);
	return path;
}

static void test_resolve_tree(void **state)
{
	char root[] = "/tmp/fpu_cgroot.XXXXXX", p[512];
	uint64_t id_root, id_ab, id_late;

	(void)state;
	assert_non_null(mkdtemp(root));
	snprintf(p, sizeof(p), "%s/a", root);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/a/b.scope", root);
	assert_int_equal(mkdir(p, 0755), 0);
	id_root = ino_of(root);
	id_ab = ino_of(p);
	assert_int_equal(cgroups_init(root), 0);

	cgroups_begin(time(NULL), 3600);
	assert_string_equal(path_of(id_root, CG_ALIVE), "/");
	assert_string_equal(path_of(id_ab, CG_ALIVE), "/a/b.scope");

	/* created after the last scan: found by the next collection's one rescan */
	snprintf(p, sizeof(p), "%s/late", root);
	assert_int_equal(mkdir(p, 0755), 0);
	id_late = ino_of(p);
	cgroups_begin(time(NULL), 3600);
	assert_string_equal(path_of(id_late, CG_ALIVE), "/late");

	/* an id no scan has seen is unknown, not gone: it may be created under a name later */
	cgroups_begin(time(NULL), 3600);
	assert_null(path_of(0x7fffffffffull, CG_UNKNOWN));
	assert_false(cgroups_gone_for(0x7fffffffffull, time(NULL) + 100000, 60));

	/* removed: noticed by the periodic rescan; keeps its last path until the grace period is over */
	assert_int_equal(rmdir(p), 0);
	cgroups_begin(time(NULL), 3600);
	assert_false(cgroups_gone_for(id_late, time(NULL) + 61, 60));	/* not rescanned yet */
	cgroups_begin(time(NULL) + 3600, 3600);
	assert_string_equal(path_of(id_late, CG_GONE), "/late");
	assert_false(cgroups_gone_for(id_late, time(NULL), 60));
	assert_true(cgroups_gone_for(id_late, time(NULL) + 61, 60));
	cgroups_expire(time(NULL) + 122, 60);
	assert_false(cgroups_gone_for(id_late, time(NULL) + 122, 60));
	assert_false(cgroups_gone_for(id_ab, time(NULL) + 122, 60));

	cgroups_fini();
	snprintf(p, sizeof(p), "%s/a/b.scope", root);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/a", root);
	rmdir(p);
	rmdir(root);
}

/* The rmdir records of the BPF side, faked: id -> (parent, name). */
static uint64_t fake_ids[3], fake_parents[3];
static const char *fake_names[3];

static int fake_removed(uint64_t id, uint64_t *parent, char *name, size_t size)
{
	for (int i = 0; i < 3; i++)
		if (fake_ids[i] == id) {
			*parent = fake_parents[i];
			snprintf(name, size, "%s", fake_names[i]);
			return 0;
		}
	return -1;
}

/*
 * A cgroup created and removed between scans is named from its rmdir record:
 * parent id and name, relative to the root whatever the hierarchy above it;
 * a removed parent is itself named from its record; outside the root, no name.
 */
static void test_removed_names(void **state)
{
	char root[] = "/tmp/fpu_cgroot.XXXXXX", p[512];
	uint64_t id_a;

	(void)state;
	assert_non_null(mkdtemp(root));
	snprintf(p, sizeof(p), "%s/a", root);
	assert_int_equal(mkdir(p, 0755), 0);
	id_a = ino_of(p);
	assert_int_equal(cgroups_init(root), 0);
	cgroups_begin(time(NULL), 3600);
	fake_ids[0] = 0x7000000001ull, fake_parents[0] = id_a, fake_names[0] = "gone.scope";
	fake_ids[1] = 0x7000000002ull, fake_parents[1] = 0x7000000003ull, fake_names[1] = "child";
	fake_ids[2] = 0x7000000003ull, fake_parents[2] = ino_of(root), fake_names[2] = "parent";
	cgroups_set_removed_lookup(fake_removed);
	assert_string_equal(path_of(fake_ids[0], CG_GONE), "/a/gone.scope");
	assert_string_equal(path_of(fake_ids[1], CG_GONE), "/parent/child");
	fake_ids[1] = 0x7000000004ull;	/* a parent neither scanned nor recorded: outside the root */
	fake_parents[1] = 0x7000000009ull;
	assert_null(path_of(fake_ids[1], CG_UNKNOWN));
	cgroups_set_removed_lookup(NULL);
	cgroups_fini();
	rmdir(p);
	rmdir(root);
}

/* A directory the scan cannot open proves nothing: no cgroup is taken as gone; it is counted. */
static void test_unreadable_dir(void **state)
{
	char root[] = "/tmp/fpu_cgroot.XXXXXX", p[512], q[512];
	uint64_t id_inner;
	unsigned long long before;

	(void)state;
	assert_non_null(mkdtemp(root));
	assert_int_equal(chmod(root, 0755), 0);
	snprintf(p, sizeof(p), "%s/locked", root);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(q, sizeof(q), "%s/locked/inner", root);
	assert_int_equal(mkdir(q, 0755), 0);
	id_inner = ino_of(q);
	assert_int_equal(cgroups_init(root), 0);
	cgroups_begin(time(NULL), 3600);
	assert_string_equal(path_of(id_inner, CG_ALIVE), "/locked/inner");
	before = cgroups_unreadable();
	/* as nobody, "locked" cannot be opened: the scan is incomplete */
	assert_int_equal(seteuid(65534), 0);
	cgroups_begin(time(NULL) + 7200, 3600);
	assert_int_equal(seteuid(0), 0);
	assert_true(cgroups_unreadable() > before);
	assert_string_equal(path_of(id_inner, CG_ALIVE), "/locked/inner");
	assert_false(cgroups_gone_for(id_inner, time(NULL) + 100000, 60));
	cgroups_fini();
	rmdir(q);
	rmdir(p);
	rmdir(root);
}

struct desc_case {
	const char *path;
	const char *unit, *pod_uid, *container_id;
};

#define CID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define UID "3f5e0c7a-1b2d-4e6f-8a9b-0c1d2e3f4a5b"
#define UID_ "3f5e0c7a_1b2d_4e6f_8a9b_0c1d2e3f4a5b"

static void test_describe(void **state)
{
	static const struct desc_case cases[] = {
		/* systemd cgroup driver: containerd, CRI-O, Docker */
		{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_ ".slice/cri-containerd-" CID ".scope",
		  "cri-containerd-" CID ".scope", UID, CID },
		{ "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_ ".slice/crio-" CID ".scope",
		  "crio-" CID ".scope", UID, CID },
		{ "/kubepods.slice/kubepods-pod" UID_ ".slice/docker-" CID ".scope", "docker-" CID ".scope", UID, CID },
		{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_ ".slice",
		  "kubepods-burstable-pod" UID_ ".slice", UID, "" },
		/* cgroupfs driver: containerd, CRI-O, Docker */
		{ "/kubepods/burstable/pod" UID "/" CID, "", UID, CID },
		{ "/kubepods/besteffort/pod" UID "/" CID, "", UID, CID },
		{ "/kubepods/pod" UID "/" CID, "", UID, CID },
		/* plain Docker and Podman, systemd units, and nothing */
		{ "/system.slice/docker-" CID ".scope", "docker-" CID ".scope", "", CID },
		{ "/docker/" CID, "", "", CID },
		{ "/machine.slice/libpod-" CID ".scope/container", "libpod-" CID ".scope", "", CID },
		{ "/system.slice/nginx.service", "nginx.service", "", "" },
		{ "/user.slice/user-1000.slice/session-4.scope", "session-4.scope", "", "" },
		{ "/machine.slice/machine-qemu\\x2d1\\x2dweb.scope/libvirt/vcpu0", "machine-qemu\\x2d1\\x2dweb.scope", "", "" },
		{ "/", "", "", "" },
		{ "/kubepods/burstable/podnotauid/abc", "", "", "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cgroup_desc d;

		cgroups_describe(cases[i].path, &d);
		assert_string_equal(d.unit, cases[i].unit);
		assert_string_equal(d.pod_uid, cases[i].pod_uid);
		assert_string_equal(d.container_id, cases[i].container_id);
	}
}

static void test_labels(void **state)
{
	char *inc[] = { "^/system\\.slice", "^/machine" }, *exc[] = { "docker" }, *bad[] = { "(" };
	char buf[256], err[256];
	struct cgroup_filter *all = cgroups_filter_new(0, NULL, 0, NULL, 0, err, sizeof(err));
	struct cgroup_filter *f = cgroups_filter_new(2, inc, 2, exc, 1, err, sizeof(err));

	(void)state;
	assert_non_null(all);
	assert_non_null(f);
	assert_string_equal(cgroups_label(all, "/a/b/c", buf, sizeof(buf)), "/a/b/c");
	assert_string_equal(cgroups_label(f, "/system.slice/nginx.service/x", buf, sizeof(buf)),
			    "/system.slice/nginx.service");
	assert_string_equal(cgroups_label(f, "/machine.slice", buf, sizeof(buf)), "/machine.slice");
	assert_string_equal(cgroups_label(f, "/user.slice/u", buf, sizeof(buf)), "");	/* not included */
	assert_string_equal(cgroups_label(f, "/system.slice/docker-1.scope", buf, sizeof(buf)), "");
	cgroups_filter_free(all);
	cgroups_filter_free(f);
	assert_null(cgroups_filter_new(0, bad, 1, NULL, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "cgroups.include: \"(\": "));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_mount),
		cmocka_unit_test(test_resolve_tree),
		cmocka_unit_test(test_removed_names),
		cmocka_unit_test(test_unreadable_dir),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_labels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
