/* main.c: flags, the init/fini ladder, the one event loop (signals, HTTP, housekeeping), systemd notification. */
#include <errno.h>
#include <malloc.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "cgroups.h"
#include "config.h"
#include "guests.h"
#include "http.h"
#include "log.h"
#include "machined.h"
#include "metrics.h"
#include "privs.h"
#include "probes.h"
#include "top.h"
#include "version.h"

#define HOUSEKEEPING_S 30

struct options {
	const char *config_file;
	const char *web_config_file;
	const char *listen_address;
	const char *telemetry_path;
	const char *log_level;
	int check_config;
};

/* The configuration in force: the main file with flags applied, and the web config it names. */
struct settings {
	struct config cfg;
	struct web_config web;
};

static void usage(FILE *f)
{
	fputs("usage: fpu_exporter [flags]\n"
	      "       fpu_exporter top [flags]    live rates from a running daemon (top --help)\n"
	      "  --config.file=PATH          YAML configuration file (default: none, built-in defaults)\n"
	      "  --web.listen-address=ADDR   address to serve metrics on (default \":9659\")\n"
	      "  --web.telemetry-path=PATH   path under which to expose metrics (default \"/metrics\")\n"
	      "  --web.config.file=PATH      TLS and basic auth, exporter-toolkit web config format\n"
	      "  --log.level=LEVEL           error, warn, info or debug (default info)\n"
	      "  --check-config              check the configuration, print \"configuration OK\" and exit\n"
	      "  --version                   print the version and exit\n"
	      "  --help                      print this help and exit\n", f);
}

/* 0 to go on, 1 to exit 0 (--help, --version), -1 on a bad flag (reported). */
static int parse_flags(int argc, char **argv, struct options *o)
{
	enum { O_CONFIG = 1, O_WEBCONFIG, O_LISTEN, O_PATH, O_LEVEL, O_CHECK, O_VERSION, O_HELP };
	static const struct option longopts[] = {
		{ "config.file", required_argument, NULL, O_CONFIG },
		{ "web.config.file", required_argument, NULL, O_WEBCONFIG },
		{ "web.listen-address", required_argument, NULL, O_LISTEN },
		{ "web.telemetry-path", required_argument, NULL, O_PATH },
		{ "log.level", required_argument, NULL, O_LEVEL },
		{ "check-config", no_argument, NULL, O_CHECK },
		{ "version", no_argument, NULL, O_VERSION },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long_only(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case O_CONFIG: o->config_file = optarg; break;
		case O_WEBCONFIG: o->web_config_file = optarg; break;
		case O_LISTEN: o->listen_address = optarg; break;
		case O_PATH: o->telemetry_path = optarg; break;
		case O_LEVEL: o->log_level = optarg; break;
		case O_CHECK: o->check_config = 1; break;
		case O_VERSION:
			printf("fpu_exporter version %s\n", FPU_EXPORTER_VERSION);
			return 1;
		case O_HELP:
			usage(stdout);
			return 1;
		case ':':
			log_error("flag %s needs a value (see --help)", argv[optind - 1]);
			return -1;
		default:
			log_error("unknown flag %s (see --help)", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument \"%s\" (see --help)", argv[optind]);
		return -1;
	}
	return 0;
}

static void replace(char **field, const char *value)
{
	if (!value)
		return;
	free(*field);
	*field = xstrdup(value);
}

/* Defaults, then the file, then flags, then the web config; 0, or -1 with the problem in err. */
static int configure(const struct options *o, struct settings *s, char *err, size_t errlen)
{
	struct config *cfg = &s->cfg;
	struct cgroup_filter *filter;
	char host[256], port[16];

	config_defaults(cfg);
	memset(&s->web, 0, sizeof(s->web));
	if (o->config_file && config_load(cfg, o->config_file, err, errlen) < 0)
		return -1;
	replace(&cfg->listen_address, o->listen_address);
	replace(&cfg->telemetry_path, o->telemetry_path);
	replace(&cfg->log_level, o->log_level);
	replace(&cfg->web_config_file, o->web_config_file);
	if (config_validate(cfg, err, errlen) < 0 ||
	    http_parse_address(cfg->listen_address, host, sizeof(host), port, sizeof(port),
			       err, errlen) < 0)
		return -1;
	if (cfg->web_config_file[0] && (web_config_load(&s->web, cfg->web_config_file, err, errlen) < 0 ||
					 http_check_tls(&s->web, err, errlen) < 0))
		return -1;
	filter = cgroups_filter_new(cfg->cgroup_depth, cfg->cgroup_include.v, cfg->cgroup_include.n,
				    cfg->cgroup_exclude.v, cfg->cgroup_exclude.n, err, errlen);
	cgroups_filter_free(filter);
	return filter ? 0 : -1;
}

static void settings_free(struct settings *s)
{
	config_free(&s->cfg);
	web_config_free(&s->web);
}

static void apply_log_level(const struct config *cfg)
{
	enum log_level level;

	if (log_level_parse(cfg->log_level, &level) == 0)
		log_set_level(level);
}

static struct http_settings http_settings_of(const struct settings *s)
{
	return (struct http_settings){
		.listen_address = s->cfg.listen_address,
		.telemetry_path = s->cfg.telemetry_path,
		.web = &s->web,
		.max_connections = (unsigned int)s->cfg.max_connections,
		.timeout = (unsigned int)s->cfg.timeout,
	};
}

/* Settings held by what privileges or the bound socket fixed at start. */
static void warn_restart_needed(const struct config *old, const struct config *new)
{
	if (strcmp(old->listen_address, new->listen_address))
		log_warn("reload: web.listen_address changes at the next restart");
	if (old->probe_fpu != new->probe_fpu || old->probe_kvm != new->probe_kvm ||
	    old->probe_signals != new->probe_signals || old->sigreturn_compat != new->sigreturn_compat ||
	    old->bpf_stats != new->bpf_stats)
		log_warn("reload: probes and bpf settings change at the next restart");
	if (strcmp(old->cgroup_root, new->cgroup_root) || strcmp(old->user, new->user))
		log_warn("reload: cgroups.root and service.user change at the next restart");
}

/*
 * SIGHUP: a new configuration that reads and validates replaces the old one
 * where it can without privileges; a bad one changes nothing.  The BPF maps
 * are not touched, so counters go on.
 */
static void reload(const struct options *o, struct settings *cur)
{
	struct settings next;
	struct http_settings hs;
	char err[1024];

	sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
	if (configure(o, &next, err, sizeof(err)) < 0) {
		log_error("reload refused, the old configuration stays: %s", err);
		settings_free(&next);
		sd_notify(0, "READY=1\nSTATUS=reload refused: old configuration in force");
		return;
	}
	hs = http_settings_of(&next);
	if (http_reload(&hs) < 0) {
		log_error("reload refused, the old configuration stays: HTTP settings rejected");
		settings_free(&next);
		sd_notify(0, "READY=1\nSTATUS=reload refused: old configuration in force");
		return;
	}
	warn_restart_needed(&cur->cfg, &next.cfg);
	/* what the restart-bound settings were stays in force */
	replace(&next.cfg.listen_address, cur->cfg.listen_address);
	apply_log_level(&next.cfg);
	metrics_configure(&next.cfg, err, sizeof(err));	/* compiled once already in configure() */
	settings_free(cur);
	*cur = next;
	log_info("configuration reloaded");
	sd_notify(0, "READY=1\nSTATUS=serving metrics");
}

static int signals_open(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int run(int sigfd, const struct options *o, struct settings *cur)
{
	time_t last_housekeeping = time(NULL);
	uint64_t watchdog_usec = 0;
	struct timespec last_ping = { 0, 0 };
	int watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;

	for (;;) {
		struct pollfd fds[3] = {
			{ .fd = sigfd, .events = POLLIN },
			{ .fd = http_poll_fd(), .events = POLLIN },
		};
		int timeout = http_timeout_ms(), bus_timeout = machined_poll(&fds[2]);
		struct timespec now;

		if (bus_timeout >= 0 && (timeout < 0 || bus_timeout < timeout))
			timeout = bus_timeout;
		if (timeout < 0 || timeout > HOUSEKEEPING_S * 1000)
			timeout = HOUSEKEEPING_S * 1000;
		/* the watchdog is fed at twice the rate systemd expects */
		if (watchdog && timeout > (int)(watchdog_usec / 2000))
			timeout = (int)(watchdog_usec / 2000);
		if (poll(fds, 3, timeout) < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			return -1;
		}
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					reload(o, cur);
					continue;
				}
				log_info("%s: shutting down", strsignal((int)si.ssi_signo));
				return 0;
			}
		}
		machined_refresh();	/* machined's answers and signals, on this loop */
		http_run();
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (watchdog && (now.tv_sec - last_ping.tv_sec) * 1000000 +
				(now.tv_nsec - last_ping.tv_nsec) / 1000 >= (long)(watchdog_usec / 2)) {
			sd_notify(0, "WATCHDOG=1");
			last_ping = now;
		}
		if (time(NULL) - last_housekeeping >= HOUSEKEEPING_S) {
			metrics_housekeep();
			last_housekeeping = time(NULL);
		}
	}
}

int main(int argc, char **argv)
{
	struct options opts = { 0 };
	struct settings cur = { 0 };
	struct http_settings hs;
	char err[1024];
	int ret = 1, sigfd = -1;

	/* `fpu_exporter top`: a client of a running daemon, no BPF, no root */
	if (argc > 1 && !strcmp(argv[1], "top"))
		return top_main(argc - 1, argv + 1);
	/*
	 * A scrape's exposition (megabytes on a big host) and other large buffers
	 * get their own mappings, returned to the system when freed; glibc's
	 * default would move them onto the heap after the first few.
	 */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	ret = parse_flags(argc, argv, &opts);
	if (ret)
		return ret > 0 ? 0 : 2;
	ret = 1;
	if (configure(&opts, &cur, err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto out_config;
	}
	apply_log_level(&cur.cfg);
	if (opts.check_config) {
		printf("configuration OK\n");
		ret = 0;
		goto out_config;
	}
	log_info("fpu_exporter %s starting", FPU_EXPORTER_VERSION);
	sd_notify(0, "STATUS=starting");
	sigfd = signals_open();
	if (sigfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		goto out_config;
	}
	if (cgroups_init(cur.cfg.cgroup_root) < 0)
		goto out_signals;
	hs = http_settings_of(&cur);
	if (http_init(&hs) < 0)
		goto out_cgroups;
	sd_notify(0, "STATUS=loading and attaching BPF programs");
	if (probes_init(&cur.cfg) < 0)
		goto out_http;
	if (metrics_init(&cur.cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto out_metrics;
	}
	if (privs_drop(cur.cfg.user, probes_unprivileged_ok) < 0)
		goto out_metrics;
	machined_init();	/* optional: VMs are named without it; the bus sees no root */
	log_info("ready");
	sd_notify(0, "READY=1\nSTATUS=serving metrics");
	ret = run(sigfd, &opts, &cur) < 0 ? 1 : 0;
	sd_notify(0, "STOPPING=1\nSTATUS=shutting down");

out_metrics:
	machined_fini();
	metrics_fini();
	guests_fini();
	probes_fini();
out_http:
	http_fini();
out_cgroups:
	cgroups_fini();
out_signals:
	close(sigfd);
out_config:
	settings_free(&cur);
	return ret;
}
