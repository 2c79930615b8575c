/* sigbad.c: test workload: N sigreturns with a spoiled XSAVE magic, N unrestorable frames, or N #GP SIGSEGVs (not sigreturn). */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

/* The fxsave image's sw_reserved bytes hold FP_XSTATE_MAGIC1 at offset 464 (asm/sigcontext.h). */
#define SW_RESERVED_MAGIC1_OFFSET 464
/* Below mmap_min_addr: never mapped, yet not NULL (NULL means "no FPU state", not an error). */
#define UNMAPPED_FPSTATE ((void *)0x1000)

static sigjmp_buf recover;
static volatile sig_atomic_t segvs;
static int mode_frame, mode_gp;

static void spoil_frame(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;

	(void)sig, (void)si;
	if (mode_frame)
		uc->uc_mcontext.fpregs = UNMAPPED_FPSTATE;
	else
		*(uint32_t *)((char *)uc->uc_mcontext.fpregs + SW_RESERVED_MAGIC1_OFFSET) = 0;
}

/* rt_sigreturn could not restore the frame (or hlt faulted): the kernel sent SIGSEGV (SI_KERNEL). */
static void on_segv(int sig, siginfo_t *si, void *ctx)
{
	(void)sig, (void)ctx;
	if (si->si_code != SI_KERNEL)
		abort();
	segvs++;
	siglongjmp(recover, 1);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	long n, i;

	if (argc != 3 || (strcmp(argv[1], "magic") && strcmp(argv[1], "frame") &&
			   strcmp(argv[1], "gp")) || (n = strtol(argv[2], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: sigbad magic|frame|gp N\n");
		return 2;
	}
	mode_frame = strcmp(argv[1], "frame") == 0;
	mode_gp = strcmp(argv[1], "gp") == 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sa.sa_sigaction = spoil_frame;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_sigaction = on_segv;
	sigaction(SIGSEGV, &sa, NULL);
	for (i = 0; i < n; i++) {
		if (sigsetjmp(recover, 1) != 0)
			continue;
		if (mode_gp)
			asm volatile("hlt");	/* privileged: #GP, SIGSEGV with SI_KERNEL */
		else
			raise(SIGUSR1);
	}
	if ((mode_frame || mode_gp) && segvs != n) {
		fprintf(stderr, "sigbad: %ld SIGSEGVs for %ld spoiled frames\n", (long)segvs, n);
		return 1;
	}
	printf("mode=%s n=%ld segvs=%ld\n", argv[1], n, (long)segvs);
	return 0;
}
