/* fuzz_http_headers.c: Accept and Accept-Encoding negotiation, Authorization: Basic decoding. */
#include <stdbool.h>

#include "fuzz.h"
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size), *user, *pass;
	size_t passlen;

	http_wants_openmetrics(s);
	http_wants_gzip(s);
	/* the raw bytes, NULs included, as MHD gives a header value with its length */
	if (http_basic_credentials((const char *)data, size, &user, &pass, &passlen) == 0) {
		if (strlen(user) >= size || passlen >= size || pass[passlen] != '\0')
			abort();
		free(user);
		free(pass);
	}
	free(s);
	return 0;
}
