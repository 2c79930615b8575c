/* sigloop.c: test workload that handles exactly N signals, each ending in one rt_sigreturn. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t handled;

static void on_signal(int sig)
{
	(void)sig;
	handled++;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	long n;

	if (argc != 2 || (n = strtol(argv[1], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: sigloop N\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0) {
		perror("sigloop: sigaction");
		return 1;
	}
	/* raise() delivers before it returns: one frame and one rt_sigreturn each. */
	for (long i = 0; i < n; i++)
		raise(SIGUSR1);
	if (handled != n) {
		fprintf(stderr, "sigloop: handled %ld of %ld signals\n", (long)handled, n);
		return 1;
	}
	printf("handled=%ld\n", (long)handled);
	return 0;
}
