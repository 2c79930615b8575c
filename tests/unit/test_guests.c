/* test_guests.c: unit tests of VM naming: QEMU -name parsing, libvirt cgroup scopes, vCPU thread names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "guests.h"

/* argv as /proc/PID/cmdline has it: NUL-separated. */
static char *name_of(const char *const *argv)
{
	char buf[512];
	size_t len = 0;

	for (; *argv; argv++) {
		size_t n = strlen(*argv) + 1;

		memcpy(buf + len, *argv, n);
		len += n;
	}
	return guest_name_from_cmdline(buf, len);
}

/* got is a parser's result (owned): NULL, or the string wanted. */
static void expect_str(char *got, const char *want)
{
	if (!want) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void expect_name(const char *const *argv, const char *want)
{
	expect_str(name_of(argv), want);
}

static void test_qemu_name(void **state)
{
	(void)state;
	expect_name((const char *const[]){ "qemu-system-x86_64", "-name", "guest=web1,debug-threads=on", NULL }, "web1");
	expect_name((const char *const[]){ "qemu", "-name", "plain", NULL }, "plain");
	expect_name((const char *const[]){ "qemu", "-name", "plain,process=foo", NULL }, "plain");
	expect_name((const char *const[]){ "qemu", "--name", "debug-threads=on,guest=late", NULL }, "late");
	expect_name((const char *const[]){ "qemu", "-name", "guest=a,,b", NULL }, "a,b");
	expect_name((const char *const[]){ "qemu", "-name", "guest=a,,,,b,,,debug-threads=on", NULL }, "a,,b,");
	expect_name((const char *const[]){ "qemu", "-m", "64", NULL }, NULL);
	expect_name((const char *const[]){ "qemu", "-name", NULL }, NULL);
	expect_name((const char *const[]){ "qemu", "-name", "guest=", NULL }, NULL);
	expect_name((const char *const[]){ "qemu", "-name", "debug-threads=on", NULL }, NULL);
}

static void expect_cgroup(const char *path, const char *want)
{
	expect_str(guest_name_from_cgroup(path), want);
}

static void test_libvirt_cgroups(void **state)
{
	(void)state;
	expect_cgroup("/machine.slice/machine-qemu\\x2d3\\x2dweb\\x2dfront.scope/libvirt/vcpu0", "web-front");
	expect_cgroup("/machine.slice/machine-qemu\\x2d12\\x2ddb.scope", "db");
	expect_cgroup("/machine.slice/machine-qemu\\x2d12\\x2ddb.scope/emulator", "db");
	expect_cgroup("/machine/qemu-7-win11.libvirt-qemu/vcpu1", "win11");
	expect_cgroup("/machine/qemu-7-a.b.libvirt-qemu", "a.b");
	expect_cgroup("/system.slice/nginx.service", NULL);
	expect_cgroup("/machine.slice/machine-lxc\\x2d1\\x2dbox.scope", NULL);
	expect_cgroup("/", NULL);
}

static void test_vcpu_threads(void **state)
{
	(void)state;
	assert_int_equal(guest_vcpu_from_comm("CPU 0/KVM"), 0);
	assert_int_equal(guest_vcpu_from_comm("CPU 13/KVM"), 13);
	assert_int_equal(guest_vcpu_from_comm("fc_vcpu 2"), 2);
	assert_int_equal(guest_vcpu_from_comm("vcpu3"), 3);
	assert_int_equal(guest_vcpu_from_comm("crosvm_vcpu4"), 4);
	assert_int_equal(guest_vcpu_from_comm("qemu-system-x86"), -1);
	assert_int_equal(guest_vcpu_from_comm("CPU 1/KVMx"), -1);
	assert_int_equal(guest_vcpu_from_comm("IO mon_iothread"), -1);
	assert_string_equal(guest_vmm_from_comm("qemu-system-x86"), "qemu");
	assert_string_equal(guest_vmm_from_comm("firecracker"), "firecracker");
	assert_string_equal(guest_vmm_from_comm("cloud-hyperviso"), "cloud-hypervisor");
	assert_string_equal(guest_vmm_from_comm("crosvm"), "crosvm");
	assert_string_equal(guest_vmm_from_comm("testvmm"), "other");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qemu_name),
		cmocka_unit_test(test_libvirt_cgroups),
		cmocka_unit_test(test_vcpu_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
