/* xstate.h: XSTATE_BV bits and the component names the metrics use for them. */
#ifndef XSTATE_H
#define XSTATE_H

#include <stdint.h>

/* Name of XSAVE component bit (0..63): "x87", "sse", "avx", ...; "bitN" in scratch for the unnamed. */
const char *xstate_component_name(unsigned int bit, char scratch[8]);
/* Renders an XSTATE_BV as the xfeatures label: 0x-prefixed lower-case hex. */
void xstate_format(uint64_t xfeatures, char out[19]);

#endif /* XSTATE_H */
