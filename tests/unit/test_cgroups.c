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
	assert_string_equal(cgroups_path(id_root), "/");
	assert_string_equal(cgroups_path(id_ab), "/a/b.scope");

	/* created after the last scan: found by the next collection's one rescan */
	snprintf(p, sizeof(p), "%s/late", root);
	assert_int_equal(mkdir(p, 0755), 0);
	id_late = ino_of(p);
	cgroups_begin(time(NULL), 3600);
	assert_string_equal(cgroups_path(id_late), "/late");

	/* removed: noticed by the periodic rescan; keeps its last path until the grace period is over */
	assert_int_equal(rmdir(p), 0);
	cgroups_begin(time(NULL), 3600);
	assert_false(cgroups_gone_for(id_late, time(NULL) + 61, 60));	/* not rescanned yet */
	cgroups_begin(time(NULL) + 3600, 3600);
	assert_string_equal(cgroups_path(id_late), "/late");
	assert_false(cgroups_gone_for(id_late, time(NULL), 60));
	assert_true(cgroups_gone_for(id_late, time(NULL) + 61, 60));
	cgroups_expire(time(NULL) + 121, 60);
	assert_false(cgroups_gone_for(id_late, time(NULL) + 121, 60));
	assert_false(cgroups_gone_for(id_ab, time(NULL) + 121, 60));

	cgroups_fini();
	snprintf(p, sizeof(p), "%s/a/b.scope", root);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/a", root);
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
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_labels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
