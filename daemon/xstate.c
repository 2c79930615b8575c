/* xstate.c: XSAVE component names by XSTATE_BV bit, after the kernel's enum xfeature. */
#include <stdio.h>
#include <inttypes.h>

#include "xstate.h"

static const char *const component_names[] = {
	[0] = "x87",
	[1] = "sse",
	[2] = "avx",
	[3] = "mpx_bndregs",
	[4] = "mpx_bndcsr",
	[5] = "avx512_opmask",
	[6] = "avx512_zmm_hi256",
	[7] = "avx512_hi16_zmm",
	[8] = "pt",
	[9] = "pkru",
	[10] = "pasid",
	[11] = "cet_user",
	[12] = "cet_kernel",
	[15] = "lbr",
	[17] = "amx_tilecfg",
	[18] = "amx_tiledata",
	[19] = "apx",
};

const char *xstate_component_name(unsigned int bit, char scratch[8])
{
	if (bit < sizeof(component_names) / sizeof(component_names[0]) && component_names[bit])
		return component_names[bit];
	snprintf(scratch, 8, "bit%u", bit & 63);
	return scratch;
}

void xstate_format(uint64_t xfeatures, char out[19])
{
	snprintf(out, 19, "0x%" PRIx64, xfeatures);
}
