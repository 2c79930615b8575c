/* test_btf.c: unit tests of btf_join_split(): a base BTF and a split BTF on it, joined, parse as one with every type and name in place; bad input refused. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/btf.h>

#include "probes.h"

static char base_path[32], split_path[32];

/* path: a new temporary file's name, made from its template */
static void write_file(char *path, const char *template, const void *data, size_t len)
{
	int fd;

	strcpy(path, template);
	fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/*
 * base: int, struct fpu { int live; }; split (a module's, as in
 * /sys/kernel/btf/kvm): struct kvm_vcpu { struct fpu *fpu; int vcpu_id; }.
 */
static void make_files(void)
{
	struct btf *base = btf__new_empty(), *split;
	int int_id, fpu_id, ptr_id, vcpu_id;
	const void *raw;
	__u32 size;

	assert_non_null(base);
	int_id = btf__add_int(base, "int", 4, BTF_INT_SIGNED);
	fpu_id = btf__add_struct(base, "fpu", 4);
	assert_int_equal(btf__add_field(base, "live", int_id, 0, 0), 0);
	split = btf__new_empty_split(base);
	assert_non_null(split);
	ptr_id = btf__add_ptr(split, fpu_id);
	vcpu_id = btf__add_struct(split, "kvm_vcpu", 16);
	assert_int_equal(btf__add_field(split, "fpu", ptr_id, 0, 0), 0);
	assert_int_equal(btf__add_field(split, "vcpu_id", int_id, 64, 0), 0);
	assert_true(vcpu_id > fpu_id);
	raw = btf__raw_data(base, &size);
	write_file(base_path, "/tmp/fpu_btf_base.XXXXXX", raw, size);
	raw = btf__raw_data(split, &size);
	write_file(split_path, "/tmp/fpu_btf_split.XXXXXX", raw, size);
	btf__free(split);
	btf__free(base);
}

static void test_join_parses_as_one(void **state)
{
	char path[64];
	struct btf *joined;
	const struct btf_type *vcpu, *fpu, *ptr, *i;
	const struct btf_member *m;
	int fd, vcpu_id, fpu_id;

	(void)state;
	make_files();
	fd = btf_join_split(base_path, split_path);
	assert_true(fd >= 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	joined = btf__parse(path, NULL);
	assert_non_null(joined);
	assert_int_equal(btf__type_cnt(joined), 5);	/* void (id 0), int, fpu, then the split part: ptr, kvm_vcpu */
	fpu_id = btf__find_by_name_kind(joined, "fpu", BTF_KIND_STRUCT);
	vcpu_id = btf__find_by_name_kind(joined, "kvm_vcpu", BTF_KIND_STRUCT);
	assert_int_equal(fpu_id, 2);
	assert_int_equal(vcpu_id, 4);
	vcpu = btf__type_by_id(joined, vcpu_id);
	assert_int_equal(btf_vlen(vcpu), 2);
	m = btf_members(vcpu);
	assert_string_equal(btf__name_by_offset(joined, m[0].name_off), "fpu");
	assert_string_equal(btf__name_by_offset(joined, m[1].name_off), "vcpu_id");
	ptr = btf__type_by_id(joined, m[0].type);
	assert_true(btf_is_ptr(ptr));
	assert_int_equal(ptr->type, fpu_id);
	fpu = btf__type_by_id(joined, fpu_id);
	assert_string_equal(btf__name_by_offset(joined, btf_members(fpu)[0].name_off), "live");
	i = btf__type_by_id(joined, m[1].type);
	assert_string_equal(btf__name_by_offset(joined, i->name_off), "int");
	btf__free(joined);
	close(fd);
	unlink(base_path);
	unlink(split_path);
}

static void test_bad_input(void **state)
{
	static const char junk[] = "not BTF at all, just bytes";

	(void)state;
	assert_int_equal(btf_join_split("/nonexistent/vmlinux", "/nonexistent/kvm"), -ENOENT);
	write_file(base_path, "/tmp/fpu_btf_base.XXXXXX", junk, sizeof(junk));
	write_file(split_path, "/tmp/fpu_btf_split.XXXXXX", junk, sizeof(junk));
	assert_int_equal(btf_join_split(base_path, split_path), -EINVAL);
	unlink(base_path);
	unlink(split_path);
	/* a header whose sections run past the end of the file */
	make_files();
	assert_int_equal(truncate(split_path, 30), 0);
	assert_int_equal(btf_join_split(base_path, split_path), -EINVAL);
	unlink(base_path);
	unlink(split_path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_join_parses_as_one),
		cmocka_unit_test(test_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
