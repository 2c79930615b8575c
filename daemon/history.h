/* history.h: a fixed-size ring of recent rates per VM and per busy cgroup, for the landing page and /status. */
#ifndef HISTORY_H
#define HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

#define HISTORY_STEP_S		10	/* a sample at most this often */
#define HISTORY_POINTS		60	/* per row: 10 minutes at one sample every 10 s */
#define HISTORY_VM_ROWS		32	/* VMs with a ring, the fastest reloading first */
#define HISTORY_CG_ROWS		16	/* cgroups with a ring, the most saving first */
#define HISTORY_NAME_MAX	128	/* bytes of a name kept; longer ones are cut */

enum history_kind { HISTORY_VM, HISTORY_CGROUP };

/* Is a sample due (HISTORY_STEP_S since the last one)? */
int history_due(time_t now);
/* A sample: begin, add each series (summed by name), end ranks and records. */
void history_begin(time_t now);
/* Adds value to the candidate kind/name; the name is the label value as rendered (escaped). */
void history_add(enum history_kind kind, const char *name, size_t len, uint64_t value);
void history_end(void);
/* {"step_seconds", "points", "vms": [...], "cgroups": [...]}, each row {name, rate, points: [[age_s, rate]...]}. */
cJSON *history_json(time_t now);

/* One row, for the landing page: oldest point first. */
struct history_row {
	char name[HISTORY_NAME_MAX];
	uint64_t hash;
	unsigned int n, head;		/* points held, next slot */
	time_t t[HISTORY_POINTS];
	float rate[HISTORY_POINTS];
};
/* The rows of a kind, busiest first; returns their number. */
size_t history_rows(enum history_kind kind, const struct history_row *const **out);
/* Point i (0 = oldest) of a row. */
void history_point(const struct history_row *r, unsigned int i, time_t *t, double *rate);

#endif /* HISTORY_H */
