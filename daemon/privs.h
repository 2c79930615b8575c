/* privs.h: giving up privileges once the probes are attached and the socket bound. */
#ifndef PRIVS_H
#define PRIVS_H

/* service.user "" means this user where it exists */
#define PRIVS_DEFAULT_USER "fpu_exporter"

/*
 * Switches to user ("": PRIVS_DEFAULT_USER if it exists, else stays) and drops every capability, keeping CAP_BPF
 * only if still_works() fails without it (kernels that check it on every
 * bpf() call).  -1 (logged) on failure.
 */
int privs_drop(const char *user, int (*still_works)(void));

#endif /* PRIVS_H */
