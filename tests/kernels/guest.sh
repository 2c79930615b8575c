#!/bin/bash
# guest.sh: PID 1 of a make test-kernels guest: mounts what the checks need, runs each, reports on /dev/ttyS1, powers off.
# The tools disk (mounted at /opt/fpu by images.sh's init stub) is laid out like the repository:
# build/ holds the host-built binaries, tests/ the scripts. Report lines, parsed by tests/kernels/run.sh:
#   KERNEL <uname -r> <linux-image package version>
#   RESULT <check> <exit status> <seconds>
#   LOG <check> <line of its output>
#   (and what the checks add: PROBE, METRIC lines)
set -u
T=/opt/fpu
export REPORT=/dev/ttyS1 BUILD=$T/build CI=true HOME=/root LANG=C.UTF-8
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$T/bin

mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t debugfs debugfs /sys/kernel/debug	# fpu_reload before KVM_GET_STATS_FD (testvmm)
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t bpf bpf /sys/fs/bpf
ip link set lo up
hostname guest
# Nested SVM under QEMU TCG (-cpu max); Intel hosts would use kvm_intel.
modprobe kvm_amd 2>/dev/null || modprobe kvm_intel 2>/dev/null

echo "KERNEL $(uname -r) $(dpkg-query -W -f '${Version}' "linux-image-$(uname -r)" 2>/dev/null)" >"$REPORT"
checks="$T/tests/kernels/g_daemon.sh $T/tests/e2e/t_sigreturn_failures.sh $T/tests/e2e/t_kvm_vmm.sh
	$T/tests/e2e/t_bad_input.sh $T/tests/kernels/g_nosysadmin.sh"
# the trace's ground truth for saves holds from 6.16 (t_truth.sh says why)
[ "$(printf '6.16\n%s\n' "$(uname -r)" | sort -V | head -n 1)" = 6.16 ] && checks="$checks $T/tests/e2e/t_truth.sh"
for check in $checks; do
	name=$(basename "$check" .sh)
	start=$(date +%s)
	timeout 300 bash "$check" >/tmp/check.log 2>&1
	status=$?
	sed "s/^/LOG $name /" /tmp/check.log >"$REPORT"
	echo "RESULT $name $status $(($(date +%s) - start))" >"$REPORT"
done
echo "DONE" >"$REPORT"
sync
echo o >/proc/sysrq-trigger
sleep 60
