/* config.h: the daemon's settings: defaults, the YAML file, and the flags that override it. */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct config {
	char *listen_address;	/* web.listen_address */
	char *telemetry_path;	/* web.telemetry_path */
	char *log_level;	/* log.level */
	bool probe_fpu;		/* probes.fpu: x86_fpu tracepoints */
	bool probe_kvm;		/* probes.kvm: kvm:kvm_fpu */
	bool probe_signals;	/* probes.signals: sigframes, sigreturn and failures */
	bool sigreturn_compat;	/* probes.sigreturn_compat: raw sys_enter for ia32/x32 */
	char *cgroup_root;	/* cgroups.root: "" finds the v2 mount */
	long grace_period;	/* cgroups.grace_period, seconds */
};

void config_defaults(struct config *c);
/*
 * Reads path into c (defaults first).  On error returns -1 and writes
 * "FILE:LINE:COLUMN: what" (or "FILE: what") into err.
 */
int config_load(struct config *c, const char *path, char *err, size_t errlen);
/* Checks values that both the file and flags can set; -1 with a message in err. */
int config_validate(const struct config *c, char *err, size_t errlen);
void config_free(struct config *c);

/* "90", "90s", "5m", "1h" -> seconds; -1 if malformed. */
long config_parse_duration(const char *s);

#endif /* CONFIG_H */
