/* xcompperm.c: asks N times for permission to use AMX tile data (arch_prctl), for itself and for a guest, and prints the results. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM		0x1023
#define ARCH_REQ_XCOMP_GUEST_PERM	0x1025
#define XFEATURE_XTILEDATA		18

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10, granted[2] = { 0 }, refused[2] = { 0 };

	for (long i = 0; i < n; i++) {
		for (int guest = 0; guest < 2; guest++) {
			long op = guest ? ARCH_REQ_XCOMP_GUEST_PERM : ARCH_REQ_XCOMP_PERM;

			if (syscall(SYS_arch_prctl, op, XFEATURE_XTILEDATA) == 0)
				granted[guest]++;
			else
				refused[guest]++;
		}
	}
	printf("process_granted=%ld process_refused=%ld guest_granted=%ld guest_refused=%ld\n",
	       granted[0], refused[0], granted[1], refused[1]);
	return 0;
}
