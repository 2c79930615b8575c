/* test_xstate.c: unit tests of XSTATE_BV bits to component names and the xfeatures label. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "xstate.h"

static void test_component_names(void **state)
{
	char scratch[8];

	(void)state;
	assert_string_equal(xstate_component_name(0, scratch), "x87");
	assert_string_equal(xstate_component_name(1, scratch), "sse");
	assert_string_equal(xstate_component_name(2, scratch), "avx");
	assert_string_equal(xstate_component_name(5, scratch), "avx512_opmask");
	assert_string_equal(xstate_component_name(6, scratch), "avx512_zmm_hi256");
	assert_string_equal(xstate_component_name(7, scratch), "avx512_hi16_zmm");
	assert_string_equal(xstate_component_name(9, scratch), "pkru");
	assert_string_equal(xstate_component_name(11, scratch), "cet_user");
	assert_string_equal(xstate_component_name(12, scratch), "cet_kernel");
	assert_string_equal(xstate_component_name(17, scratch), "amx_tilecfg");
	assert_string_equal(xstate_component_name(18, scratch), "amx_tiledata");
	assert_string_equal(xstate_component_name(19, scratch), "apx");
	assert_string_equal(xstate_component_name(13, scratch), "bit13");
	assert_string_equal(xstate_component_name(63, scratch), "bit63");
}

static void test_format(void **state)
{
	char out[19];

	(void)state;
	xstate_format(0x206, out);
	assert_string_equal(out, "0x206");
	xstate_format(0, out);
	assert_string_equal(out, "0x0");
	xstate_format(UINT64_MAX, out);
	assert_string_equal(out, "0xffffffffffffffff");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_component_names),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
