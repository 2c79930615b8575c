/* config.h: the daemon's settings (defaults, YAML file, flags) and the web config for TLS and basic auth. */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct strlist {
	char **v;
	size_t n;
};

struct config {
	char *listen_address;	/* web.listen_address */
	char *telemetry_path;	/* web.telemetry_path */
	char *web_config_file;	/* web.config_file: TLS and basic auth, exporter-toolkit format */
	long max_connections;	/* web.max_connections */
	long timeout;		/* web.timeout, seconds: idle time before a connection is closed */
	char *log_level;	/* log.level */
	bool probe_fpu;		/* probes.fpu: x86_fpu tracepoints */
	bool probe_kvm;		/* probes.kvm: kvm:kvm_fpu */
	bool probe_signals;	/* probes.signals: sigframes, sigreturn and failures */
	bool sigreturn_compat;	/* probes.sigreturn_compat: raw sys_enter for ia32/x32 */
	bool bpf_stats;		/* bpf.stats_enabled: BPF run time per program while running */
	long bpf_max_cgroups;	/* bpf.max_cgroups: entries of cgroup_hot and cgroup_rare; 0 = by CPU count */
	long bpf_max_xstates;	/* bpf.max_xstates: (cgroup, XSTATE_BV) entries; 0 = by CPU count */
	long bpf_max_vcpu_threads;	/* bpf.max_vcpu_threads */
	long bpf_max_guest_xstates;	/* bpf.max_guest_xstates: (VM, XSTATE_BV) entries */
	long bpf_max_removed_cgroups;	/* bpf.max_removed_cgroups: names of removed cgroups kept */
	char *cgroup_root;	/* cgroups.root: "" finds the v2 mount */
	long grace_period;	/* cgroups.grace_period, seconds */
	long cgroup_depth;	/* cgroups.depth: label paths cut to this many levels; 0 keeps all */
	struct strlist cgroup_include;	/* cgroups.include: regexes; none = every cgroup */
	struct strlist cgroup_exclude;	/* cgroups.exclude: regexes */
	long max_series;	/* series.max_per_family: more are folded into one; 0 = no limit */
	char *user;		/* service.user: switch to this user once set up; "" stays */
};

struct web_user {
	char *name;
	char *hash;		/* bcrypt */
};

struct web_config {
	char *cert_file;	/* tls_server_config.cert_file, absolute */
	char *key_file;		/* tls_server_config.key_file, absolute */
	char *min_version;	/* tls_server_config.min_version: TLS12 or TLS13 */
	struct web_user *users;	/* basic_auth_users */
	size_t nusers;
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

/* Reads an exporter-toolkit web config; the same error convention. */
int web_config_load(struct web_config *w, const char *path, char *err, size_t errlen);
void web_config_free(struct web_config *w);

/* Opens path for reading if it is a regular file (never blocking on a FIFO); -1 with err set. */
int config_open_regular(const char *path, FILE **out, char *err, size_t errlen);

/* "90", "90s", "5m", "1h" -> seconds, at most a year; -1 if malformed. */
long config_parse_duration(const char *s);

#endif /* CONFIG_H */
