#!/bin/bash
# t_kernel_6_12.sh: make test-kernels for Debian's newest 6.12 (bookworm-backports): booted under QEMU TCG, every guest check passes.
. "$(dirname "$0")/lib.sh"

require_root
command -v qemu-system-x86_64 >/dev/null || skip_or_fail "qemu-system-x86_64 is not installed"
FPU_KERNELS=bookworm-backports bash "$ROOT/tests/kernels/run.sh"
case $? in
0) ;;
77) skip_or_fail "no image of Linux 6.12 could be built (the Debian mirror?)" ;;
*) fail "Linux 6.12 (bookworm-backports): a check failed" ;;
esac
