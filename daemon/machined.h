/* machined.h: VM names from systemd-machined over sd-bus, kept current by its signals. */
#ifndef MACHINED_H
#define MACHINED_H

#include <poll.h>
#include <sys/types.h>

struct machine {
	char *name;		/* the label: a libvirt machine's domain name, else machined's name */
	char *uuid;		/* "" when machined has none */
	pid_t leader;
	char *path;		/* machined's object path */
};

/*
 * Connects to the system bus and lists the VMs (waiting at most a second for
 * the answers); without machined the chain just goes on (0 either way).
 */
int machined_init(void);
void machined_fini(void);
/* Handles what came from the bus (replies, MachineNew/MachineRemoved), never waiting. */
void machined_refresh(void);
/* The bus fd and events for the loop's poll (fd -1: none); returns the ms it may sleep, -1 forever. */
int machined_poll(struct pollfd *pfd);
/* The VM (class vm) whose leader is pid, or NULL. */
const struct machine *machined_lookup(pid_t pid);
/* "qemu-<id>-<name>" of a libvirt-qemu machine -> "<name>"; NULL otherwise (for tests). */
char *machined_libvirt_name(const char *service, const char *name);

#endif /* MACHINED_H */
