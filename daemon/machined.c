/* machined.c: asks org.freedesktop.machine1 for VMs (ListMachines, each one's Leader and Id) and follows its signals. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>

#include "log.h"
#include "machined.h"

#define MACHINE1 "org.freedesktop.machine1"
#define MANAGER_PATH "/org/freedesktop/machine1"
#define MANAGER_IFACE "org.freedesktop.machine1.Manager"
#define MACHINE_IFACE "org.freedesktop.machine1.Machine"
#define CALL_TIMEOUT_US (1000 * 1000)

static struct {
	sd_bus *bus;
	sd_bus_slot *new_slot, *removed_slot;
	int dirty;		/* machines came or went since the last listing */
	struct machine *machines;
	size_t n;
} md;

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

static void machines_clear(void)
{
	for (size_t i = 0; i < md.n; i++) {
		free(md.machines[i].name);
		free(md.machines[i].uuid);
	}
	free(md.machines);
	md.machines = NULL;
	md.n = 0;
}

static int on_change(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	(void)userdata, (void)err;
	log_debug("machined: %s", sd_bus_message_get_member(m));
	md.dirty = 1;
	return 0;
}

/* Leader and Id of the machine at path; 0 or -errno. */
static int machine_props(const char *path, pid_t *leader, char uuid[37])
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const void *id;
	size_t len = 0;
	uint32_t pid;
	int r;

	r = sd_bus_get_property_trivial(md.bus, MACHINE1, path, MACHINE_IFACE, "Leader", &err, 'u', &pid);
	sd_bus_error_free(&err);
	if (r < 0)
		return r;
	*leader = (pid_t)pid;
	uuid[0] = '\0';
	r = sd_bus_get_property(md.bus, MACHINE1, path, MACHINE_IFACE, "Id", &err, &reply, "ay");
	sd_bus_error_free(&err);
	if (r >= 0 && sd_bus_message_read_array(reply, 'y', &id, &len) >= 0 && len == 16) {
		const unsigned char *b = id;
		int zero = 1;

		for (size_t i = 0; i < 16; i++)
			zero &= b[i] == 0;
		if (!zero)
			snprintf(uuid, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
				 "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6],
				 b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	}
	sd_bus_message_unref(reply);
	return 0;
}

static void list_machines(void)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *name, *class, *service, *path;
	int r;

	md.dirty = 0;
	machines_clear();
	r = sd_bus_call_method(md.bus, MACHINE1, MANAGER_PATH, MANAGER_IFACE, "ListMachines",
			       &err, &reply, "");
	if (r < 0) {
		log_debug("machined: ListMachines: %s", err.message ? err.message : strerror(-r));
		sd_bus_error_free(&err);
		return;
	}
	if (sd_bus_message_enter_container(reply, 'a', "(ssso)") < 0)
		goto out;
	while (sd_bus_message_read(reply, "(ssso)", &name, &class, &service, &path) > 0) {
		struct machine m = { 0 };
		char uuid[37];

		if (strcmp(class, "vm") || machine_props(path, &m.leader, uuid) < 0)
			continue;
		m.name = machined_libvirt_name(service, name);
		if (!m.name)
			m.name = xstrdup(name);
		m.uuid = xstrdup(uuid);
		md.machines = xrealloc(md.machines, (md.n + 1) * sizeof(*md.machines));
		md.machines[md.n++] = m;
		log_debug("machined: vm \"%s\" (%s), leader %d", m.name, name, (int)m.leader);
	}
out:
	sd_bus_message_unref(reply);
}

int machined_init(void)
{
	int r = sd_bus_open_system(&md.bus);

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
	log_info("machined: %zu VMs registered", md.n);
	return 0;
}

void machined_refresh(void)
{
	if (!md.bus)
		return;
	/* drain what came in: signals set dirty */
	int r;

	while ((r = sd_bus_process(md.bus, NULL)) > 0)
		;
	if (r < 0)
		log_debug("machined: %s", strerror(-r));
	if (md.dirty)
		list_machines();
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
	machines_clear();
	sd_bus_slot_unref(md.new_slot);
	sd_bus_slot_unref(md.removed_slot);
	sd_bus_flush_close_unref(md.bus);
	memset(&md, 0, sizeof(md));
}
