#!/bin/bash
# t_kernel_5_10.sh: make test-kernels for Debian's newest 5.10 (bullseye): booted under QEMU TCG, every guest check passes.
. "$(dirname "$0")/lib.sh"

kernel_matrix bullseye "Linux 5.10"
