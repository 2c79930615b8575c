#!/bin/bash
# t_qemu.sh: Debian's QEMU under KVM, paused: exporter's per-domain fpu_reload equals QMP query-stats, per vCPU too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/qemu.sh"

require_kvm
command -v qemu-system-x86_64 >/dev/null || skip_or_fail "qemu-system-x86_64 is not installed"
NAME=fpu-e2e-qemu-$$
start_daemon
mkdir "$WORK/qemu"
qemu_start "$NAME" 2 "$WORK/qemu" || fail "QEMU did not start"
at_exit "qemu_stop '$WORK/qemu'"
sleep 2
qemu_pause "$WORK/qemu" || fail "QEMU did not pause"
qemu_fpu_reload "$WORK/qemu" >"$WORK/qmp" || fail "query-stats failed"
want=$(qemu_fpu_reload_sum "$WORK/qemu") || fail "query-stats failed"
scrape >"$WORK/m" || fail "scrape failed"
got=$(metric_sum "$WORK/m" fpu_guest_reloads_total "domain=\"$NAME\"")
note "QMP fpu_reload sum=$want exporter sum=$got"
[ "$want" -gt 0 ] || fail "QMP reports no fpu_reload at all"
[ "$got" = "$want" ] || fail "fpu_guest_reloads_total{domain=\"$NAME\"} sums to $got, QMP says $want"
while read -r line; do
	eval "$line"	# vcpu=N fpu_reload=M
	v=$(metric_sum "$WORK/m" fpu_guest_reloads_total "domain=\"$NAME\"" "vcpu=\"$vcpu\"")
	note "vcpu $vcpu: QMP $fpu_reload exporter $v"
	[ "$v" = "$fpu_reload" ] || fail "vcpu $vcpu: exporter $v, QMP $fpu_reload"
done <"$WORK/qmp"
info=$(metric_sum "$WORK/m" fpu_guest_info "domain=\"$NAME\"" "pid=\"$QEMU_PID\"" 'vmm="qemu"')
[ "$info" = 1 ] || fail "fpu_guest_info for QEMU = $info"
