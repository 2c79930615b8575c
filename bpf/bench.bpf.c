// SPDX-License-Identifier: GPL-2.0
/* bench.bpf.c: an empty program on the hottest tracepoint, the baseline make bench compares against. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/x86_fpu_regs_deactivated")
int BPF_PROG(empty_baseline, struct fpu *fpu)
{
	return 0;
}
