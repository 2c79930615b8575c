/* fuzz_config.c: the YAML configuration parser (config_load), then the checks on what it read. */
#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char err[1024];

	config_defaults(&c);
	/* regexes are compiled in a child process: not per input */
	if (config_load(&c, fuzz_file(data, size), err, sizeof(err)) == 0 &&
	    !c.cgroup_include.n && !c.cgroup_exclude.n)
		config_validate(&c, err, sizeof(err));
	config_free(&c);
	return 0;
}
