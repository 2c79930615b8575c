#!/bin/bash
# t_kernel_newest.sh: make test-kernels for Debian's newest kernel (trixie-backports: 7.x): booted under QEMU TCG, every guest check passes.
# 7.x runs BTF and raw tracepoint programs preemptibly: t_truth's exact guest images there, with
# a busy thread on the vCPUs' CPU, are what shows kvm:kvm_fpu attached as a classic tracepoint.
. "$(dirname "$0")/lib.sh"

require_root
command -v qemu-system-x86_64 >/dev/null || skip_or_fail "qemu-system-x86_64 is not installed"
FPU_KERNELS=trixie-backports bash "$ROOT/tests/kernels/run.sh"
case $? in
0) ;;
77) skip_or_fail "no image of Debian's trixie-backports kernel could be built (the Debian mirror?)" ;;
*) fail "Debian's trixie-backports kernel: a check failed" ;;
esac
