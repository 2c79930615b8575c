#!/bin/bash
# t_kernel_5_10.sh: make test-kernels for Debian's newest 5.10 (bullseye): booted under QEMU TCG, every guest check passes.
. "$(dirname "$0")/lib.sh"

require_root
command -v qemu-system-x86_64 >/dev/null || skip_or_fail "qemu-system-x86_64 is not installed"
FPU_KERNELS=bullseye bash "$ROOT/tests/kernels/run.sh"
case $? in
0) ;;
77) skip_or_fail "no image of Linux 5.10 could be built (the Debian mirror?)" ;;
*) fail "Linux 5.10 (bullseye): a check failed" ;;
esac
