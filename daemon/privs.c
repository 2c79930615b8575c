/* privs.c: capability and user switching with raw capget/capset, no libcap. */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "privs.h"

#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static int caps_set(uint64_t permitted, uint64_t effective)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = {
		{ (uint32_t)effective, (uint32_t)permitted, 0 },
		{ (uint32_t)(effective >> 32), (uint32_t)(permitted >> 32), 0 },
	};

	return (int)syscall(SYS_capset, &h, d);
}

static int switch_user(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (!pw) {
		log_error("service.user \"%s\": no such user", user);
		return -1;
	}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || initgroups(user, pw->pw_gid) < 0 ||
	    setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0 ||
	    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) {
		log_error("switching to user \"%s\": %s", user, strerror(errno));
		return -1;
	}
	log_info("running as user %s (uid %u)", user, (unsigned int)pw->pw_uid);
	return 0;
}

/* true with the permitted set in *out, false (errno set) if capget fails */
static bool caps_permitted(uint64_t *out)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) < 0)
		return false;
	*out = (uint64_t)d[1].permitted << 32 | d[0].permitted;
	return true;
}

int privs_drop(const char *user, int (*still_works)(void))
{
	uint64_t permitted, keep = 0;

	/* "" means the dedicated user where there is one */
	if (!*user && getpwnam(PRIVS_DEFAULT_USER))
		user = PRIVS_DEFAULT_USER;
	if (*user && switch_user(user) < 0)
		return -1;
	if (!*user && getuid() == 0)
		log_warn("no user \"" PRIVS_DEFAULT_USER "\" and service.user is empty: staying uid 0, "
			 "without capabilities (see README, Install as a service)");
	/* setuid() cleared the effective set: raise it again for CAP_SETPCAP. */
	if (!caps_permitted(&permitted) || caps_set(permitted, permitted) < 0) {
		log_error("raising capabilities to drop them: %s", strerror(errno));
		return -1;
	}
	/*
	 * Nothing can come back through execve either: empty the bounding set (it
	 * limits no capability already permitted).  That takes CAP_SETPCAP, which
	 * a container given only what the probes need does not have: there
	 * NO_NEW_PRIVS (set below, checked) is what keeps execve from granting any.
	 */
	for (int cap = 0; cap < 64; cap++) {
		int in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);

		if (in < 0 && errno == EINVAL)
			break;	/* past the last capability this kernel knows */
		if (in != 1 || prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			continue;
		if (errno == EPERM && !(permitted & (1ull << CAP_SETPCAP))) {
			log_info("no CAP_SETPCAP: the bounding set stays as it is; no_new_privs "
				 "keeps execve from granting capabilities");
			break;
		}
		log_error("dropping capability %d from the bounding set: %s", cap, strerror(errno));
		return -1;
	}
	/* Try without any capability, CAP_BPF still permitted to come back. */
	if (caps_set(permitted & (1ull << CAP_BPF), 0) < 0) {
		log_error("dropping capabilities: %s", strerror(errno));
		return -1;
	}
	if (!still_works())
		keep = permitted & (1ull << CAP_BPF);
	if (caps_set(keep, keep) < 0) {
		log_error("dropping capabilities: %s", strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_error("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
	log_info("dropped privileges; capabilities kept: %s",
		 keep ? "CAP_BPF (this kernel checks it on every bpf() call)" : "none");
	return 0;
}
