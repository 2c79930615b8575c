/* fuzz_label.c: label value escaping: the output has no raw newline or unescaped quote. */
#include "expo.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size);
	struct buf b = { 0 };

	expo_escape_label(&b, s);
	for (size_t i = 0; i < b.len; i++) {
		if (b.data[i] == '\n')
			abort();
		if (b.data[i] == '\\') {
			if (i + 1 == b.len || !strchr("\\\"n", b.data[i + 1]))
				abort();
			i++;
		} else if (b.data[i] == '"') {
			abort();
		}
	}
	buf_free(&b);
	free(s);
	return 0;
}
