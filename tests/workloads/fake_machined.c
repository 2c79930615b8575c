/* fake_machined.c: test double of systemd-machined that serves org.freedesktop.machine1 from command-line and stdin machines. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <systemd/sd-id128.h>

#define BUS_NAME	"org.freedesktop.machine1"
#define MANAGER_PATH	"/org/freedesktop/machine1"
#define MANAGER_IFACE	"org.freedesktop.machine1.Manager"
#define MACHINE_PREFIX	"/org/freedesktop/machine1/machine"
#define MACHINE_IFACE	"org.freedesktop.machine1.Machine"
#define ERR_NO_MACHINE	"org.freedesktop.machine1.NoSuchMachine"
#define ERR_NO_PID	"org.freedesktop.machine1.NoMachineForPID"
#define LINE_MAX_LEN	4096

struct machine {
	struct machine *next;
	char *name;
	char *class;		/* "vm" or "container" */
	char *service;
	char *unit;
	char *path;		/* sd_bus_path_encode(MACHINE_PREFIX, name) */
	const char *root;	/* always "": only containers have one */
	const char *state;	/* always "running" */
	uint32_t leader;
	sd_id128_t id;
	uint64_t realtime;	/* usec, CLOCK_REALTIME at registration */
	uint64_t monotonic;	/* usec, CLOCK_MONOTONIC at registration */
};

struct manager {
	sd_bus *bus;
	sd_event *event;
	struct machine *machines;
	char line[LINE_MAX_LEN];
	size_t line_len;
	int line_overflow;
};

static void die(const char *what, int err)
{
	fprintf(stderr, "fake_machined: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fake_machined [--machine NAME,CLASS,SERVICE,LEADER_PID,UNIT,UUID]...\n"
		"  CLASS is vm or container; UUID is 32 hex digits, the dashed form, or empty.\n"
		"  stdin: 'add NAME,CLASS,SERVICE,LEADER_PID,UNIT,UUID' or 'remove NAME', one a line;\n"
		"  stdout: 'ready' once " BUS_NAME " is owned, then 'ok' or 'error: ...' per command.\n");
	exit(2);
}

static uint64_t now_usec(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static struct machine *machine_find(struct manager *m, const char *name)
{
	struct machine *mc;

	for (mc = m->machines; mc; mc = mc->next)
		if (strcmp(mc->name, name) == 0)
			return mc;
	return NULL;
}

static struct machine *machine_find_unit(struct manager *m, const char *unit)
{
	struct machine *mc;

	for (mc = m->machines; mc; mc = mc->next)
		if (mc->unit[0] && strcmp(mc->unit, unit) == 0)
			return mc;
	return NULL;
}

static void machine_free(struct machine *mc)
{
	if (!mc)
		return;
	free(mc->name);
	free(mc->class);
	free(mc->service);
	free(mc->unit);
	free(mc->path);
	free(mc);
}

static int parse_leader(const char *s, uint32_t *ret)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > INT32_MAX)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

/*
 * Parses NAME,CLASS,SERVICE,LEADER_PID,UNIT,UUID into a new machine.
 * On a bad spec returns NULL with *why saying which field is wrong.
 */
static struct machine *machine_parse(const char *spec, const char **why)
{
	char *copy, *cur, *f[6];
	struct machine *mc;
	int i;

	copy = strdup(spec);
	mc = calloc(1, sizeof(*mc));
	if (!copy || !mc)
		die("allocating a machine", ENOMEM);
	cur = copy;
	for (i = 0; i < 6 && cur; i++)
		f[i] = strsep(&cur, ",");
	*why = NULL;
	if (i != 6 || cur)
		*why = "want 6 comma-separated fields NAME,CLASS,SERVICE,LEADER_PID,UNIT,UUID";
	else if (!f[0][0] || strchr(f[0], '/'))
		*why = "bad NAME";
	else if (strcmp(f[1], "vm") && strcmp(f[1], "container"))
		*why = "CLASS must be vm or container";
	else if (parse_leader(f[3], &mc->leader) < 0)
		*why = "LEADER_PID must be a positive pid";
	else if (f[5][0] && sd_id128_from_string(f[5], &mc->id) < 0)
		*why = "UUID must be 32 hex digits or the dashed form";
	if (*why) {
		free(copy);
		free(mc);
		return NULL;
	}
	mc->name = strdup(f[0]);
	mc->class = strdup(f[1]);
	mc->service = strdup(f[2]);
	mc->unit = strdup(f[4]);
	mc->root = "";
	mc->state = "running";
	mc->realtime = now_usec(CLOCK_REALTIME);
	mc->monotonic = now_usec(CLOCK_MONOTONIC);
	free(copy);
	if (!mc->name || !mc->class || !mc->service || !mc->unit)
		die("allocating a machine", ENOMEM);
	if (sd_bus_path_encode(MACHINE_PREFIX, mc->name, &mc->path) < 0)
		die("encoding a machine path", ENOMEM);
	return mc;
}

static int machine_signal(struct manager *m, struct machine *mc, const char *member)
{
	return sd_bus_emit_signal(m->bus, MANAGER_PATH, MANAGER_IFACE, member,
				  "so", mc->name, mc->path);
}

/* Adds a parsed machine; MachineNew goes out only once the bus is up (not for --machine). */
static const char *machine_add(struct manager *m, struct machine *mc)
{
	struct machine **tail;
	int r;

	if (machine_find(m, mc->name)) {
		machine_free(mc);
		return "a machine of that name exists";
	}
	for (tail = &m->machines; *tail; tail = &(*tail)->next)
		;
	*tail = mc;
	if (m->bus) {
		r = machine_signal(m, mc, "MachineNew");
		if (r < 0)
			die("emitting MachineNew", r);
	}
	return NULL;
}

static const char *machine_remove(struct manager *m, const char *name)
{
	struct machine **pp, *mc;
	int r;

	for (pp = &m->machines; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->name, name) == 0)
			break;
	mc = *pp;
	if (!mc)
		return "no machine of that name";
	*pp = mc->next;
	r = machine_signal(m, mc, "MachineRemoved");
	if (r < 0)
		die("emitting MachineRemoved", r);
	machine_free(mc);
	return NULL;
}

/* The first component of a cgroup path that is not a slice, as cg_path_get_unit() finds it. */
static int cgroup_unit(char *cg, char *unit, size_t size)
{
	char *save = NULL, *c;

	for (c = strtok_r(cg, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		size_t n = strlen(c);

		if (n > 6 && strcmp(c + n - 6, ".slice") == 0)
			continue;
		if (n >= size)
			return -ENAMETOOLONG;
		memcpy(unit, c, n + 1);
		return 0;
	}
	return -ENOENT;
}

/*
 * The unit of a pid from /proc/PID/cgroup: the unified ("0::") path first,
 * then the legacy name=systemd one, so hybrid and v1 hosts work too.
 */
static int pid_unit(uint32_t pid, char *unit, size_t size)
{
	char path[64], buf[4096], v2[4096] = "", v1[4096] = "", *c;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%" PRIu32 "/cgroup", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(buf, sizeof(buf), f)) {
		buf[strcspn(buf, "\n")] = '\0';
		if (strncmp(buf, "0::", 3) == 0)
			snprintf(v2, sizeof(v2), "%s", buf + 3);
		else if ((c = strstr(buf, ":name=systemd:")))
			snprintf(v1, sizeof(v1), "%s", c + strlen(":name=systemd:"));
	}
	fclose(f);
	if (cgroup_unit(v2, unit, size) == 0)
		return 0;
	return cgroup_unit(v1, unit, size);
}

/* The thread group (process) of a thread id, or 0. */
static uint32_t pid_tgid(uint32_t tid)
{
	char path[64], buf[256];
	uint32_t tgid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%" PRIu32 "/status", tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "Tgid: %" SCNu32, &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

static struct machine *machine_find_leader(struct manager *m, uint32_t pid)
{
	struct machine *mc;

	for (mc = m->machines; mc; mc = mc->next)
		if (mc->leader == pid)
			return mc;
	return NULL;
}

/*
 * Like manager_get_machine_by_pid(): by leader, then by the pid's unit. The
 * threads of a leader count too: on a real host they share its scope, here
 * the leader usually sits outside any machine cgroup.
 */
static struct machine *machine_by_pid(struct manager *m, uint32_t pid)
{
	struct machine *mc;
	uint32_t tgid;
	char unit[256];

	mc = machine_find_leader(m, pid);
	if (mc)
		return mc;
	tgid = pid_tgid(pid);
	if (tgid && tgid != pid) {
		mc = machine_find_leader(m, tgid);
		if (mc)
			return mc;
	}
	if (pid_unit(pid, unit, sizeof(unit)) < 0)
		return NULL;
	return machine_find_unit(m, unit);
}

static int method_list_machines(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	sd_bus_message *reply = NULL;
	struct machine *mc;
	int r;

	(void)error;
	r = sd_bus_message_new_method_return(msg, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(ssso)");
	for (mc = m->machines; r >= 0 && mc; mc = mc->next)
		r = sd_bus_message_append(reply, "(ssso)", mc->name, mc->class,
					  mc->service, mc->path);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
	return r;
}

static int method_get_machine(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct machine *mc;
	const char *name;
	int r;

	r = sd_bus_message_read(msg, "s", &name);
	if (r < 0)
		return r;
	mc = machine_find(userdata, name);
	if (!mc)
		return sd_bus_error_setf(error, ERR_NO_MACHINE, "No machine '%s' known", name);
	return sd_bus_reply_method_return(msg, "o", mc->path);
}

static int sender_pid(sd_bus_message *msg, uint32_t *pid)
{
	sd_bus_creds *creds = NULL;
	pid_t p;
	int r;

	r = sd_bus_query_sender_creds(msg, SD_BUS_CREDS_PID, &creds);
	if (r >= 0)
		r = sd_bus_creds_get_pid(creds, &p);
	sd_bus_creds_unref(creds);
	if (r >= 0)
		*pid = (uint32_t)p;
	return r;
}

static int method_get_machine_by_pid(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct machine *mc;
	uint32_t pid;
	int r;

	r = sd_bus_message_read(msg, "u", &pid);
	if (r < 0)
		return r;
	/* pid 0 means the caller, as on the real machined */
	if (pid == 0) {
		r = sender_pid(msg, &pid);
		if (r < 0)
			return r;
	}
	mc = machine_by_pid(userdata, pid);
	if (!mc)
		return sd_bus_error_setf(error, ERR_NO_PID,
					 "PID %" PRIu32 " does not belong to any known machine", pid);
	return sd_bus_reply_method_return(msg, "o", mc->path);
}

static int property_get_id(sd_bus *bus, const char *path, const char *interface,
			   const char *property, sd_bus_message *reply, void *userdata,
			   sd_bus_error *error)
{
	struct machine *mc = userdata;

	(void)bus; (void)path; (void)interface; (void)property; (void)error;
	return sd_bus_message_append_array(reply, 'y', mc->id.bytes, sizeof(mc->id.bytes));
}

static int property_get_netif(sd_bus *bus, const char *path, const char *interface,
			      const char *property, sd_bus_message *reply, void *userdata,
			      sd_bus_error *error)
{
	(void)bus; (void)path; (void)interface; (void)property; (void)userdata; (void)error;
	return sd_bus_message_append_array(reply, 'i', NULL, 0);
}

static const sd_bus_vtable manager_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD_WITH_ARGS("GetMachine",
				SD_BUS_ARGS("s", name),
				SD_BUS_RESULT("o", machine),
				method_get_machine, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("GetMachineByPID",
				SD_BUS_ARGS("u", pid),
				SD_BUS_RESULT("o", machine),
				method_get_machine_by_pid, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("ListMachines",
				SD_BUS_NO_ARGS,
				SD_BUS_RESULT("a(ssso)", machines),
				method_list_machines, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_SIGNAL_WITH_ARGS("MachineNew", SD_BUS_ARGS("s", machine, "o", path), 0),
	SD_BUS_SIGNAL_WITH_ARGS("MachineRemoved", SD_BUS_ARGS("s", machine, "o", path), 0),
	SD_BUS_VTABLE_END
};

static const sd_bus_vtable machine_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Name", "s", NULL, offsetof(struct machine, name),
			SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Id", "ay", property_get_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Timestamp", "t", NULL, offsetof(struct machine, realtime),
			SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("TimestampMonotonic", "t", NULL, offsetof(struct machine, monotonic),
			SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Service", "s", NULL, offsetof(struct machine, service),
			SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Unit", "s", NULL, offsetof(struct machine, unit),
			SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Leader", "u", NULL, offsetof(struct machine, leader),
			SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Class", "s", NULL, offsetof(struct machine, class),
			SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("RootDirectory", "s", NULL, offsetof(struct machine, root),
			SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("NetworkInterfaces", "ai", property_get_netif, 0,
			SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("State", "s", NULL, offsetof(struct machine, state), 0),
	SD_BUS_VTABLE_END
};

static int machine_object_find(sd_bus *bus, const char *path, const char *interface,
			       void *userdata, void **found, sd_bus_error *error)
{
	struct machine *mc;
	char *name = NULL;
	int r;

	(void)bus; (void)interface; (void)error;
	r = sd_bus_path_decode(path, MACHINE_PREFIX, &name);
	if (r <= 0)
		return r;
	mc = machine_find(userdata, name);
	free(name);
	if (!mc)
		return 0;
	*found = mc;
	return 1;
}

static int machine_node_enumerator(sd_bus *bus, const char *path, void *userdata,
				   char ***nodes, sd_bus_error *error)
{
	struct manager *m = userdata;
	struct machine *mc;
	size_t n = 0, i = 0;
	char **l;

	(void)bus; (void)path; (void)error;
	for (mc = m->machines; mc; mc = mc->next)
		n++;
	l = calloc(n + 1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	for (mc = m->machines; mc; mc = mc->next) {
		l[i] = strdup(mc->path);
		if (!l[i++]) {
			while (i)
				free(l[--i]);
			free(l);
			return -ENOMEM;
		}
	}
	*nodes = l;
	return 1;
}

static void reply_line(const char *why)
{
	if (why) {
		fprintf(stderr, "fake_machined: command: %s\n", why);
		printf("error: %s\n", why);
	} else {
		printf("ok\n");
	}
	fflush(stdout);
}

/* One stdin command; "ok" goes out only once its signal is written to the bus. */
static void run_command(struct manager *m, char *line)
{
	struct machine *mc;
	const char *why;
	size_t n = strlen(line);
	int r;

	while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
		line[--n] = '\0';
	if (!n)
		return;
	if (strncmp(line, "add ", 4) == 0) {
		mc = machine_parse(line + 4, &why);
		if (mc)
			why = machine_add(m, mc);
	} else if (strncmp(line, "remove ", 7) == 0) {
		why = machine_remove(m, line + 7);
	} else {
		why = "unknown command (want 'add SPEC' or 'remove NAME')";
	}
	r = sd_bus_flush(m->bus);
	if (r < 0)
		die("flushing the bus", r);
	reply_line(why);
}

static void feed_input(struct manager *m, const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (buf[i] != '\n') {
			if (m->line_len + 1 < sizeof(m->line))
				m->line[m->line_len++] = buf[i];
			else
				m->line_overflow = 1;
			continue;
		}
		m->line[m->line_len] = '\0';
		if (m->line_overflow)
			reply_line("line too long");
		else
			run_command(m, m->line);
		m->line_len = 0;
		m->line_overflow = 0;
	}
}

/* At EOF the source is switched off and machined keeps serving until a signal. */
static int on_stdin(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	char buf[4096];
	ssize_t n;

	(void)revents;
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n < 0)
		die("reading stdin", errno);
	if (n == 0)
		return sd_event_source_set_enabled(s, SD_EVENT_OFF);
	feed_input(userdata, buf, (size_t)n);
	return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	(void)si; (void)userdata;
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void parse_args(struct manager *m, int argc, char **argv)
{
	struct machine *mc;
	const char *why;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--machine") != 0 || i + 1 >= argc)
			usage();
		mc = machine_parse(argv[++i], &why);
		if (mc)
			why = machine_add(m, mc);
		if (why) {
			fprintf(stderr, "fake_machined: --machine %s: %s\n", argv[i], why);
			exit(2);
		}
	}
}

static void setup_events(struct manager *m)
{
	sigset_t mask;
	int r;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		die("blocking signals", errno);
	signal(SIGPIPE, SIG_IGN);
	r = sd_event_default(&m->event);
	if (r < 0)
		die("creating the event loop", r);
	r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
	if (r >= 0)
		r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
	if (r < 0)
		die("watching signals", r);
}

static void setup_bus(struct manager *m)
{
	int r;

	/* honours $DBUS_SYSTEM_BUS_ADDRESS */
	r = sd_bus_open_system(&m->bus);
	if (r < 0)
		die("connecting to the system bus", r);
	r = sd_bus_add_object_vtable(m->bus, NULL, MANAGER_PATH, MANAGER_IFACE,
				     manager_vtable, m);
	if (r < 0)
		die("adding the manager object", r);
	r = sd_bus_add_fallback_vtable(m->bus, NULL, MACHINE_PREFIX, MACHINE_IFACE,
				       machine_vtable, machine_object_find, m);
	if (r < 0)
		die("adding the machine objects", r);
	r = sd_bus_add_node_enumerator(m->bus, NULL, MACHINE_PREFIX,
				       machine_node_enumerator, m);
	if (r < 0)
		die("adding the machine enumerator", r);
	r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
	if (r < 0)
		die("attaching the bus", r);
	/* a lost bus ends the loop, so a dead dbus-daemon leaves no orphan */
	r = sd_bus_set_exit_on_disconnect(m->bus, 1);
	if (r < 0)
		die("setting exit on disconnect", r);
	r = sd_bus_request_name(m->bus, BUS_NAME, 0);
	if (r < 0)
		die("acquiring " BUS_NAME, r);
}

static void setup_stdin(struct manager *m)
{
	int r;

	r = sd_event_add_io(m->event, NULL, STDIN_FILENO, EPOLLIN, on_stdin, m);
	/* a regular file or /dev/null cannot be polled: run without commands */
	if (r == -EPERM)
		return;
	if (r < 0)
		die("watching stdin", r);
}

int main(int argc, char **argv)
{
	struct manager m = { 0 };
	struct machine *mc;
	int r;

	parse_args(&m, argc, argv);
	setup_events(&m);
	setup_bus(&m);
	setup_stdin(&m);
	printf("ready\n");
	fflush(stdout);
	r = sd_event_loop(m.event);
	if (r < 0)
		die("running the event loop", r);
	while ((mc = m.machines)) {
		m.machines = mc->next;
		machine_free(mc);
	}
	sd_bus_flush_close_unref(m.bus);
	sd_event_unref(m.event);
	return r;
}
