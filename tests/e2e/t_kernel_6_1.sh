#!/bin/bash
# t_kernel_6_1.sh: make test-kernels for Debian's newest 6.1 (bookworm): booted under QEMU TCG, every guest check passes.
. "$(dirname "$0")/lib.sh"

kernel_matrix bookworm "Linux 6.1"
