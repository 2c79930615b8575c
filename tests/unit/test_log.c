/* test_log.c: unit tests of multi-line logging: libbpf messages and a refused program's verifier log, line by line and exact. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

/* A verifier log ending as regs_deactivated's did on Debian's 5.10 (no bpf_get_current_task_btf); the first lines are made up. */
static const char log_5_10[] =
	"reg type unsupported for arg#0 function regs_deactivated#17\n"
	"0: R1=ctx(id=0,off=0,imm=0) R10=fp0\n"
	"; int BPF_PROG(regs_deactivated, struct fpu *fpu)\n"
	"17: (85) call unknown#158\n"
	"invalid func unknown#158\n"
	"processed 5 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";

static char out_path[] = "/tmp/fpu_log_test.XXXXXX";

/* Runs fn with stderr going to a file; returns what was written (static buffer). */
static const char *captured(void (*fn)(void))
{
	static char buf[8192];
	int fd = mkstemp(out_path), saved = dup(2);
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
	unlink(out_path);
	strcpy(out_path, "/tmp/fpu_log_test.XXXXXX");
	return buf;
}

static char cause[96];

static void verifier_5_10(void)
{
	log_verifier("regs_deactivated", log_5_10, cause, sizeof(cause));
}

static void test_verifier_log_debug(void **state)
{
	(void)state;
	log_set_level(LOG_LVL_DEBUG);
	assert_string_equal(captured(verifier_5_10),
		"fpu_exporter: debug: verifier: regs_deactivated: reg type unsupported for arg#0 function regs_deactivated#17\n"
		"fpu_exporter: debug: verifier: regs_deactivated: 0: R1=ctx(id=0,off=0,imm=0) R10=fp0\n"
		"fpu_exporter: debug: verifier: regs_deactivated: ; int BPF_PROG(regs_deactivated, struct fpu *fpu)\n"
		"fpu_exporter: debug: verifier: regs_deactivated: 17: (85) call unknown#158\n"
		"fpu_exporter: debug: verifier: regs_deactivated: invalid func unknown#158\n"
		"fpu_exporter: debug: verifier: regs_deactivated: processed 5 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n"
		"fpu_exporter: error: verifier: regs_deactivated: 17: (85) call unknown#158\n"
		"fpu_exporter: error: verifier: regs_deactivated: invalid func unknown#158\n"
		"fpu_exporter: error: verifier: regs_deactivated: processed 5 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n");
	assert_string_equal(cause, "invalid func unknown#158");
}

static void test_verifier_log_error_level(void **state)
{
	(void)state;
	log_set_level(LOG_LVL_ERROR);
	assert_string_equal(captured(verifier_5_10),
		"fpu_exporter: error: verifier: regs_deactivated: 17: (85) call unknown#158\n"
		"fpu_exporter: error: verifier: regs_deactivated: invalid func unknown#158\n"
		"fpu_exporter: error: verifier: regs_deactivated: processed 5 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n");
	log_set_level(LOG_LVL_INFO);
}

static void short_log(void)
{
	log_verifier("kvm_fpu_classic", "failed to resolve CO-RE relocation\n\n", cause, sizeof(cause));
}

static void empty_log(void)
{
	log_verifier("fpu_dropped", "", cause, sizeof(cause));
}

static void test_verifier_log_short_and_empty(void **state)
{
	(void)state;
	log_set_level(LOG_LVL_ERROR);
	assert_string_equal(captured(short_log),
		"fpu_exporter: error: verifier: kvm_fpu_classic: failed to resolve CO-RE relocation\n");
	assert_string_equal(cause, "failed to resolve CO-RE relocation");
	assert_string_equal(captured(empty_log), "");
	assert_string_equal(cause, "");
	log_set_level(LOG_LVL_INFO);
}

static void libbpf_message(void)
{
	log_lines(LOG_LVL_DEBUG, "libbpf", "prog 'x': first\n\nsecond line\nthird");
}

static void test_lines(void **state)
{
	(void)state;
	log_set_level(LOG_LVL_DEBUG);
	assert_string_equal(captured(libbpf_message),
		"fpu_exporter: debug: libbpf: prog 'x': first\n"
		"fpu_exporter: debug: libbpf: second line\n"
		"fpu_exporter: debug: libbpf: third\n");
	log_set_level(LOG_LVL_INFO);
	assert_string_equal(captured(libbpf_message), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verifier_log_debug),
		cmocka_unit_test(test_verifier_log_error_level),
		cmocka_unit_test(test_verifier_log_short_and_empty),
		cmocka_unit_test(test_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
