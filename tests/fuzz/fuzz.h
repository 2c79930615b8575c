/* fuzz.h: what the libFuzzer targets share: the input as a C string, and as a regular file. */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data and a NUL after it, on the heap (a C string up to its first NUL) */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* data as the whole content of a regular file (a memfd), named by the returned path */
const char *fuzz_file(const uint8_t *data, size_t size);

#endif /* FUZZ_H */
