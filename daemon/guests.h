/* guests.h: who a KVM-using process is (domain, VMM, cgroup) and which vCPU a thread runs. */
#ifndef GUESTS_H
#define GUESTS_H

#include <stddef.h>
#include <sys/types.h>

struct guest {
	struct guest *hnext;		/* guests.c's table by pid (first: chain.h) */
	pid_t pid;
	unsigned long long start_time;	/* /proc/PID/stat field 22: tells a reused pid */
	char *domain;
	char *uuid;			/* "" when unknown */
	char *cgroup;
	const char *vmm;
	/* where domain came from: machined, libvirt-cgroup, qemu-name, firecracker-id, comm-pid */
	const char *name_source;
	unsigned int name_gen;		/* bumped each time it is (re)named */
	int used;			/* seen in the current collection */
	struct guest *next;
};

/* Marks every cached guest unused; guests_sweep() drops those not looked up since. */
void guests_begin(void);
void guests_sweep(void);
void guests_fini(void);
/* The cached guests, for walking with ->next; those with used set were seen in this collection. */
const struct guest *guests_first(void);

/*
 * The guest running as process pid, from the cache or /proc: 0, or -ENOENT
 * once the process is gone, or another -errno when /proc could not tell
 * (EMFILE, ENOMEM): not a proof that it is gone.
 */
int guests_lookup(pid_t pid, const struct guest **out);
/* vCPU label of thread tid of pid: its index, "none" for a VMM thread that is not a vCPU; -ENOENT when gone. */
int guests_vcpu_label(pid_t pid, pid_t tid, char *out, size_t size);

/* Parsers, exposed for the unit tests. */
char *guest_name_from_cmdline(const char *args, size_t len);
/* The value after a flag (or "FLAG=VALUE") in a NUL-separated command line, or NULL. */
char *guest_cmdline_value(const char *args, size_t len, const char *flag);
char *guest_name_from_cgroup(const char *path);
int guest_vcpu_from_comm(const char *comm);
const char *guest_vmm_from_comm(const char *comm);

#endif /* GUESTS_H */
