#!/bin/bash
# t_kernel_newest.sh: make test-kernels for Debian's newest kernel (trixie-backports: 7.x): booted under QEMU TCG, every guest check passes.
# 7.x runs BTF and raw tracepoint programs preemptibly: t_truth's exact guest images there, with
# a busy thread on the vCPUs' CPU, are what shows kvm:kvm_fpu attached as a classic tracepoint.
. "$(dirname "$0")/lib.sh"

kernel_matrix trixie-backports "Debian's newest kernel"
