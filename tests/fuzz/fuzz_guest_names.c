/* fuzz_guest_names.c: VM names from a QEMU command line (NUL-separated) and from a cgroup path. */
#include "fuzz.h"
#include "guests.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* as the daemon reads /proc/PID/cmdline: size bytes, then a NUL */
	char *s = fuzz_string(data, size);

	free(guest_name_from_cmdline(s, size));
	free(guest_name_from_cgroup(s));
	free(s);
	return 0;
}
