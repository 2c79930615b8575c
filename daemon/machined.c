/* machined.c: VMs from org.freedesktop.machine1 (ListMachines, each one's Leader and Id), asynchronously on the loop's poll, kept current by its signals. */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>

#include "log.h"
#include "machined.h"

#define MACHINE1 "org.freedesktop.machine1"
#define MANAGER_PATH "/org/freedesktop/machine1"
#define MANAGER_IFACE "org.freedesktop.machine1.Manager"
#define MACHINE_IFACE "org.freedesktop.machine1.Machine"
#define CALL_TIMEOUT_US (1000 * 1000)
/* at start, how long the first listing may take before the daemon goes on without it */
#define START_WAIT_US (1000 * 1000)

static struct {
	sd_bus *bus;
	sd_bus_slot *new_slot, *removed_slot;
	struct machine *machines;
	size_t n;
	int listing;		/* a ListMachines or a machine's properties still to come */
} md;

/* What a GetAll reply needs to know: which machine it is about. */
struct query {
	char *name, *service, *path;
};

char *machined_libvirt_name(const char *service, const char *name)
{
	const char *p = name + 5;

	if (strcmp(service, "libvirt-qemu") || strncmp(name, "qemu-", 5))
		return NULL;
	while (isdigit((unsigned char)*p))
		p++;
	if (p == name + 5 || *p != '-' || !p[1])
		return NULL;
	return xstrdup(p + 1);
}

static void machine_free(struct machine *m)
{
	free(m->name);
	free(m->uuid);
	free(m->path);
}

static void machines_clear(void)
{
	for (size_t i = 0; i < md.n; i++)
		machine_free(&md.machines[i]);
	free(md.machines);
	md.machines = NULL;
	md.n = 0;
}

static void machine_remove(const char *path)
{
	for (size_t i = 0; i < md.n; i++) {
		if (strcmp(md.machines[i].path, path))
			continue;
		log_debug("machined: vm \"%s\" gone", md.machines[i].name);
		machine_free(&md.machines[i]);
		md.machines[i] = md.machines[--md.n];
		return;
	}
}

/* Takes m in, replacing what was known at its path. */
static void machine_put(struct machine *m)
{
	machine_remove(m->path);
	md.machines = xrealloc(md.machines, (md.n + 1) * sizeof(*md.machines));
	md.machines[md.n++] = *m;
	log_debug("machined: vm \"%s\", leader %d", m->name, (int)m->leader);
}

static void query_free(void *userdata)
{
	struct query *q = userdata;

	md.listing--;
	free(q->name);
	free(q->service);
	free(q->path);
	free(q);
}

/* The "Id" property, 16 bytes, as a UUID; "" when all zero. */
static void read_uuid(sd_bus_message *reply, char uuid[37])
{
	const unsigned char *b;
	const void *id;
	size_t len = 0;
	int zero = 1;

	uuid[0] = '\0';
	if (sd_bus_message_read_array(reply, 'y', &id, &len) < 0 || len != 16)
		return;
	b = id;
	for (size_t i = 0; i < 16; i++)
		zero &= b[i] == 0;
	if (!zero)
		snprintf(uuid, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
			 "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6],
			 b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* A machine's properties: Class, Service, Leader and Id.  A failure keeps what was known. */
static int on_props(sd_bus_message *reply, void *userdata, sd_bus_error *ret)
{
	struct query *q = userdata;
	const sd_bus_error *e = sd_bus_message_get_error(reply);
	const char *class = "", *service = q->service;
	struct machine m = { 0 };
	char uuid[37] = "";
	uint32_t leader = 0;

	(void)ret;
	if (e) {
		log_debug("machined: properties of %s: %s", q->name, e->message ? e->message : e->name);
		return 0;
	}
	if (sd_bus_message_enter_container(reply, 'a', "{sv}") < 0)
		return 0;
	while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
		const char *key;
		int r = sd_bus_message_read(reply, "s", &key);

		if (r >= 0 && !strcmp(key, "Class"))
			r = sd_bus_message_read(reply, "v", "s", &class);
		else if (r >= 0 && !strcmp(key, "Service"))
			r = sd_bus_message_read(reply, "v", "s", &service);
		else if (r >= 0 && !strcmp(key, "Leader"))
			r = sd_bus_message_read(reply, "v", "u", &leader);
		else if (r >= 0 && !strcmp(key, "Id") &&
			 (r = sd_bus_message_enter_container(reply, 'v', "ay")) >= 0) {
			read_uuid(reply, uuid);
			r = sd_bus_message_exit_container(reply);
		} else if (r >= 0)
			r = sd_bus_message_skip(reply, "v");
		if (r < 0 || sd_bus_message_exit_container(reply) < 0)
			return 0;
	}
	if (strcmp(class, "vm") || !leader)
		return 0;
	m.name = machined_libvirt_name(service ? service : "", q->name);
	if (!m.name)
		m.name = xstrdup(q->name);
	m.uuid = xstrdup(uuid);
	m.path = xstrdup(q->path);
	m.leader = (pid_t)leader;
	machine_put(&m);
	return 0;
}

/* Asks for the properties of the machine at path; the reply comes to on_props(). */
static void query_machine(const char *name, const char *service, const char *path)
{
	struct query *q = xcalloc(1, sizeof(*q));
	sd_bus_slot *slot = NULL;
	int r;

	q->name = xstrdup(name);
	q->service = service ? xstrdup(service) : NULL;
	q->path = xstrdup(path);
	r = sd_bus_call_method_async(md.bus, &slot, MACHINE1, path, "org.freedesktop.DBus.Properties",
				     "GetAll", on_props, q, "s", MACHINE_IFACE);
	md.listing++;
	if (r < 0) {
		log_debug("machined: asking for %s: %s", name, strerror(-r));
		query_free(q);
		return;
	}
	/* the bus owns the call; q goes with it, answered or not */
	sd_bus_slot_set_destroy_callback(slot, query_free);
	sd_bus_slot_set_floating(slot, 1);
	sd_bus_slot_unref(slot);
}

/* ListMachines: asks for each VM's properties; a machine not listed is gone. A failure keeps all. */
static int on_list(sd_bus_message *reply, void *userdata, sd_bus_error *ret)
{
	const sd_bus_error *e = sd_bus_message_get_error(reply);
	const char *name, *class, *service, *path;
	char **listed = NULL;
	size_t n = 0;

	(void)userdata, (void)ret;
	md.listing--;
	if (e) {
		log_debug("machined: ListMachines: %s; the %zu VMs known stay", e->message ? e->message : e->name,
			  md.n);
		return 0;
	}
	if (sd_bus_message_enter_container(reply, 'a', "(ssso)") < 0)
		return 0;
	while (sd_bus_message_read(reply, "(ssso)", &name, &class, &service, &path) > 0) {
		listed = xrealloc(listed, (n + 1) * sizeof(*listed));
		listed[n++] = xstrdup(path);
		if (!strcmp(class, "vm"))
			query_machine(name, service, path);
	}
	for (size_t i = md.n; i-- > 0;) {
		size_t j = 0;

		while (j < n && strcmp(listed[j], md.machines[i].path))
			j++;
		if (j == n)
			machine_remove(md.machines[i].path);
	}
	for (size_t j = 0; j < n; j++)
		free(listed[j]);
	free(listed);
	return 0;
}

static void list_machines(void)
{
	int r = sd_bus_call_method_async(md.bus, NULL, MACHINE1, MANAGER_PATH, MANAGER_IFACE,
					 "ListMachines", on_list, NULL, "");

	if (r < 0)
		log_debug("machined: ListMachines: %s", strerror(-r));
	else
		md.listing++;
}

/* MachineNew (s name, o path): ask for its properties; MachineRemoved: forget it. */
static int on_change(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	const char *member = sd_bus_message_get_member(m), *name, *path;

	(void)userdata, (void)err;
	if (sd_bus_message_read(m, "so", &name, &path) < 0)
		return 0;
	log_debug("machined: %s %s", member, name);
	if (!strcmp(member, "MachineNew"))
		query_machine(name, NULL, path);
	else
		machine_remove(path);
	return 0;
}

int machined_init(void)
{
	int r = sd_bus_open_system(&md.bus);
	uint64_t deadline;
	struct timespec ts;

	if (r < 0) {
		log_info("machined: no system bus (%s): VMs are named without it", strerror(-r));
		md.bus = NULL;
		return 0;
	}
	/* path, interface and member say enough; the sender is machined's unique name */
	sd_bus_match_signal(md.bus, &md.new_slot, NULL, MANAGER_PATH, MANAGER_IFACE, "MachineNew",
			    on_change, NULL);
	sd_bus_match_signal(md.bus, &md.removed_slot, NULL, MANAGER_PATH, MANAGER_IFACE,
			    "MachineRemoved", on_change, NULL);
	sd_bus_set_method_call_timeout(md.bus, CALL_TIMEOUT_US);
	list_machines();
	/* before the loop runs, the first listing may take START_WAIT_US */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	deadline = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000 + START_WAIT_US;
	while (md.listing > 0) {
		uint64_t now;

		while ((r = sd_bus_process(md.bus, NULL)) > 0)
			;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
		if (r < 0 || md.listing <= 0 || now >= deadline)
			break;
		sd_bus_wait(md.bus, deadline - now);
	}
	log_info("machined: %zu VMs registered%s", md.n, md.listing > 0 ? " so far" : "");
	return 0;
}

void machined_refresh(void)
{
	int r;

	if (!md.bus)
		return;
	while ((r = sd_bus_process(md.bus, NULL)) > 0)
		;
	if (r < 0)
		log_debug("machined: %s", strerror(-r));
}

int machined_poll(struct pollfd *pfd)
{
	uint64_t usec;
	struct timespec ts;
	int events;

	pfd->fd = -1;
	pfd->events = 0;
	if (!md.bus)
		return -1;
	events = sd_bus_get_events(md.bus);
	pfd->fd = sd_bus_get_fd(md.bus);
	pfd->events = (short)(events > 0 ? events : POLLIN);
	if (sd_bus_get_timeout(md.bus, &usec) < 0 || usec == UINT64_MAX)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (usec <= (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000)
		return 0;
	usec -= (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	return usec / 1000 > 60000 ? 60000 : (int)(usec / 1000) + 1;
}

const struct machine *machined_lookup(pid_t pid)
{
	for (size_t i = 0; i < md.n; i++)
		if (md.machines[i].leader == pid)
			return &md.machines[i];
	return NULL;
}

void machined_fini(void)
{
	sd_bus_slot_unref(md.new_slot);
	sd_bus_slot_unref(md.removed_slot);
	sd_bus_flush_close_unref(md.bus);	/* pending calls go, with their queries */
	machines_clear();
	memset(&md, 0, sizeof(md));
}
