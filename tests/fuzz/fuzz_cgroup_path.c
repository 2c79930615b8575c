/* fuzz_cgroup_path.c: what a cgroup path says (unit, pod UID, container id); each field NUL-terminated. */
#include "cgroups.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size);
	struct cgroup_desc d;

	memset(&d, 0xa5, sizeof(d));
	cgroups_describe(s, &d);
	if (!memchr(d.unit, 0, sizeof(d.unit)) || !memchr(d.pod_uid, 0, sizeof(d.pod_uid)) ||
	    !memchr(d.container_id, 0, sizeof(d.container_id)))
		abort();
	free(s);
	return 0;
}
