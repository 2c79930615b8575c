/* fuzz_web_config.c: the exporter-toolkit web config parser (web_config_load). */
#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct web_config w;
	char err[1024];

	web_config_load(&w, fuzz_file(data, size), err, sizeof(err));
	web_config_free(&w);
	return 0;
}
