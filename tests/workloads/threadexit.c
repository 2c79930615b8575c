/* threadexit.c: N threads one after another, each using the FPU, sleeping once and exiting: real saves and thread exits. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cgjoin.h"

static void *worker(void *arg)
{
	volatile double x = (double)(long)arg;

	for (int i = 0; i < 1000; i++)
		x = x * 1.000001 + 0.5;
	usleep(100);	/* switched out with its FPU registers live: one real save */
	x += 1.0;
	return NULL;
}

/*
 * With a cgroup directory, it moves itself there, takes the name fpu_truth
 * (its threads inherit it) and waits for a line on stdin before it starts:
 * a test reads its counters and starts a trace meanwhile.
 */
int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100;

	if (argc > 2 && cgjoin(argv[2], "fpu_truth"))
		return 1;
	for (long i = 0; i < n; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, worker, (void *)i) || pthread_join(t, NULL)) {
			perror("threadexit: pthread");
			return 1;
		}
	}
	return 0;
}
