/* cgjoin.h: a test workload joins a cgroup under a name of its own and waits for the test to say go. */
#ifndef CGJOIN_H
#define CGJOIN_H

#include <stdio.h>
#include <sys/prctl.h>

/*
 * Moves the process into the cgroup directory dir, takes the name comm (its
 * threads inherit it) and waits for a line on stdin: meanwhile a test reads
 * its counters and starts a trace that selects the workload by that name.
 * Returns 0, or -1 with a message on stderr.
 */
static inline int cgjoin(const char *dir, const char *comm)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if (!(f = fopen(path, "w")) || fprintf(f, "0\n") < 0 || fclose(f)) {
		perror(path);
		return -1;
	}
	prctl(PR_SET_NAME, comm);
	if (!fgets(path, sizeof(path), stdin)) {
		fprintf(stderr, "%s: no go line on stdin\n", comm);
		return -1;
	}
	return 0;
}

#endif /* CGJOIN_H */
