#!/bin/bash
# t_kernel_6_12.sh: make test-kernels for Debian's newest 6.12 (bookworm-backports): booted under QEMU TCG, every guest check passes.
. "$(dirname "$0")/lib.sh"

kernel_matrix bookworm-backports "Linux 6.12"
