/* avxspin.c: test workload that sleeps N times with a YMM register dirty, so each switch-out saves AVX state. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>

#include "cgjoin.h"

/*
 * Loads ymm8 with non-zero upper lanes and enters nanosleep in the same asm
 * block, so no library code (which may vzeroupper) runs in between: the
 * XSAVE at the context switch finds the AVX component live.
 */
__attribute__((target("avx")))
static long sleep_with_ymm_dirty(const struct timespec *ts)
{
	static const float ones[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
	long ret;

	asm volatile("vmovups %[v], %%ymm8\n\t"
		     "syscall"
		     : "=a"(ret)
		     : "0"((long)SYS_nanosleep), "D"(ts), "S"(0L), [v] "m"(ones)
		     : "rcx", "r11", "memory", "xmm8");
	return ret;
}

int main(int argc, char **argv)
{
	struct timespec ts = { 0, 100 * 1000 };
	long n;

	if (argc < 2 || argc > 3 || (n = strtol(argv[1], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: avxspin N [CGROUP_DIR]\n");
		return 2;
	}
	if (!__builtin_cpu_supports("avx")) {
		fprintf(stderr, "avxspin: this CPU has no AVX\n");
		return 1;
	}
	/* with a cgroup: join it as fpu_avx and wait for a line on stdin (cgjoin.h) */
	if (argc == 3 && cgjoin(argv[2], "fpu_avx"))
		return 1;
	for (long i = 0; i < n; i++)
		if (sleep_with_ymm_dirty(&ts) != 0) {
			fprintf(stderr, "avxspin: nanosleep failed\n");
			return 1;
		}
	printf("sleeps=%ld\n", n);
	return 0;
}
