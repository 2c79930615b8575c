/* main.c: flags, the init/fini ladder, and the one event loop (signals, HTTP, housekeeping). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "cgroups.h"
#include "config.h"
#include "guests.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "probes.h"
#include "version.h"

#define HOUSEKEEPING_S 30

struct options {
	const char *config_file;
	const char *listen_address;
	const char *telemetry_path;
	const char *log_level;
	int check_config;
};

static void usage(FILE *f)
{
	fputs("usage: fpu_exporter [flags]\n"
	      "  --config.file=PATH          YAML configuration file (default: none, built-in defaults)\n"
	      "  --web.listen-address=ADDR   address to serve metrics on (default \":9659\")\n"
	      "  --web.telemetry-path=PATH   path under which to expose metrics (default \"/metrics\")\n"
	      "  --log.level=LEVEL           error, warn, info or debug (default info)\n"
	      "  --check-config              check the configuration, print \"configuration OK\" and exit\n"
	      "  --version                   print the version and exit\n"
	      "  --help                      print this help and exit\n", f);
}

/* 0 to go on, 1 to exit 0 (--help, --version), -1 on a bad flag (reported). */
static int parse_flags(int argc, char **argv, struct options *o)
{
	enum { O_CONFIG = 1, O_LISTEN, O_PATH, O_LEVEL, O_CHECK, O_VERSION, O_HELP };
	static const struct option longopts[] = {
		{ "config.file", required_argument, NULL, O_CONFIG },
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

/* Defaults, then the file, then flags; 0, or -1 with the problem reported. */
static int configure(const struct options *o, struct config *cfg)
{
	char err[1024], host[256], port[16];
	enum log_level level;

	config_defaults(cfg);
	if (o->config_file && config_load(cfg, o->config_file, err, sizeof(err)) < 0)
		goto bad;
	replace(&cfg->listen_address, o->listen_address);
	replace(&cfg->telemetry_path, o->telemetry_path);
	replace(&cfg->log_level, o->log_level);
	if (config_validate(cfg, err, sizeof(err)) < 0 ||
	    http_parse_address(cfg->listen_address, host, sizeof(host), port, sizeof(port),
			       err, sizeof(err)) < 0)
		goto bad;
	log_level_parse(cfg->log_level, &level);
	log_set_level(level);
	return 0;
bad:
	log_error("%s", err);
	return -1;
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

static int run(int sigfd)
{
	time_t last_housekeeping = time(NULL);

	for (;;) {
		struct pollfd fds[2] = {
			{ .fd = sigfd, .events = POLLIN },
			{ .fd = http_poll_fd(), .events = POLLIN },
		};
		int timeout = http_timeout_ms();

		if (timeout < 0 || timeout > HOUSEKEEPING_S * 1000)
			timeout = HOUSEKEEPING_S * 1000;
		if (poll(fds, 2, timeout) < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			return -1;
		}
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					log_info("SIGHUP: configuration reload is not supported yet, ignored");
					continue;
				}
				log_info("%s: shutting down", strsignal((int)si.ssi_signo));
				return 0;
			}
		}
		http_run();
		if (time(NULL) - last_housekeeping >= HOUSEKEEPING_S) {
			metrics_housekeep();
			last_housekeeping = time(NULL);
		}
	}
}

int main(int argc, char **argv)
{
	struct options opts = { 0 };
	struct config cfg = { 0 };
	int ret = 1, sigfd = -1, err;

	err = parse_flags(argc, argv, &opts);
	if (err)
		return err > 0 ? 0 : 2;
	if (configure(&opts, &cfg) < 0)
		goto out_config;
	if (opts.check_config) {
		printf("configuration OK\n");
		ret = 0;
		goto out_config;
	}
	log_info("fpu_exporter %s starting", FPU_EXPORTER_VERSION);
	sigfd = signals_open();
	if (sigfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		goto out_config;
	}
	if (cgroups_init(cfg.cgroup_root) < 0)
		goto out_signals;
	if (http_init(cfg.listen_address, cfg.telemetry_path) < 0)
		goto out_cgroups;
	if (probes_init(&cfg) < 0)
		goto out_http;
	metrics_init(&cfg);
	log_info("ready");
	ret = run(sigfd) < 0 ? 1 : 0;

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
	config_free(&cfg);
	return ret;
}
