/* status.c: renders /status with cJSON from the probes' state, the last collection's maps and guests. */
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "guests.h"
#include "history.h"
#include "log.h"
#include "metrics.h"
#include "probes.h"
#include "status.h"
#include "version.h"

static cJSON *probes_json(void)
{
	const struct probe_status *st;
	int n = probes_status(&st);
	cJSON *a = cJSON_CreateArray();

	for (int i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "probe", st[i].probe);
		cJSON_AddStringToObject(o, "program", st[i].program);
		cJSON_AddBoolToObject(o, "attached", st[i].attached);
		if (!st[i].attached)
			cJSON_AddStringToObject(o, "why", st[i].why);
		cJSON_AddNumberToObject(o, "run_count", (double)st[i].run_count);
		cJSON_AddNumberToObject(o, "run_time_ns", (double)st[i].run_time_ns);
		cJSON_AddNumberToObject(o, "missed_runs", (double)st[i].missed);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

static cJSON *maps_json(void)
{
	const struct map_stat *ms;
	int n = metrics_map_stats(&ms);
	cJSON *a = cJSON_CreateArray();

	for (int i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "map", ms[i].name);
		cJSON_AddNumberToObject(o, "entries", (double)ms[i].entries);
		cJSON_AddNumberToObject(o, "capacity", ms[i].capacity);
		cJSON_AddNumberToObject(o, "full_events", (double)ms[i].full);
		cJSON_AddNumberToObject(o, "memory_bytes", (double)ms[i].memory);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

static cJSON *guests_json(void)
{
	cJSON *a = cJSON_CreateArray();

	for (const struct guest *g = guests_first(); g; g = g->next) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "domain", g->domain);
		cJSON_AddStringToObject(o, "name_source", g->name_source);
		cJSON_AddStringToObject(o, "uuid", g->uuid);
		cJSON_AddNumberToObject(o, "pid", g->pid);
		cJSON_AddStringToObject(o, "vmm", g->vmm);
		cJSON_AddStringToObject(o, "cgroup", g->cgroup);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

void status_render(struct buf *out)
{
	cJSON *doc = cJSON_CreateObject();
	struct utsname u;
	char *text;

	if (!doc)
		die_oom();
	/* a reader of the live view gets a fresh sample, one per HISTORY_STEP_S at most */
	if (history_due(time(NULL)))
		metrics_housekeep();
	cJSON_AddStringToObject(doc, "version", FPU_EXPORTER_VERSION);
	cJSON_AddStringToObject(doc, "kernel", uname(&u) == 0 ? u.release : "unknown");
	cJSON_AddStringToObject(doc, "hostname", uname(&u) == 0 ? u.nodename : "unknown");
	cJSON_AddStringToObject(doc, "libbpf", probes_libbpf_version());
	cJSON_AddItemToObject(doc, "probes", probes_json());
	cJSON_AddItemToObject(doc, "maps", maps_json());
	/* the VMs seen by the last collection (scrape or housekeeping) */
	cJSON_AddItemToObject(doc, "guests", guests_json());
	/* recent rates: VMs by fpu_reload/s, the busiest cgroups by saves/s (daemon/history.c) */
	cJSON_AddItemToObject(doc, "history", history_json(time(NULL)));
	text = cJSON_Print(doc);
	cJSON_Delete(doc);
	if (!text)
		die_oom();
	buf_append(out, text, strlen(text));
	buf_append(out, "\n", 1);
	free(text);
}
