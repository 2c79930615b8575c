#!/bin/bash
# t_kvm_vmm.sh: a test VMM's per-vCPU fpu_reload (KVM_GET_STATS_FD) equals fpu_guest_reloads_total exactly; exited VMs leave.
. "$(dirname "$0")/lib.sh"

require_kvm
RUNS=137,291,53
start_daemon
# ",," is QEMU's escaped comma: the domain is "fpu,e2e".
"$BUILD/tests/testvmm" -name guest=fpu,,e2e,debug-threads=on --runs $RUNS --hold-threads \
	--ready "$WORK/ready" >"$WORK/vmm.out" 2>&1 &
vmm=$!
at_exit "kill $vmm 2>/dev/null; wait $vmm 2>/dev/null"
for _ in $(seq 100); do [ -s "$WORK/ready" ] && break; sleep 0.1; done
[ -s "$WORK/ready" ] || { cat "$WORK/vmm.out"; fail "the test VMM did not get ready"; }

# root may open perf events: the classic tracepoint serves kvm_fpu (probes.c, prefer_classic)
grep -q 'probe kvm:kvm_fpu: attached (kvm_fpu_classic)' "$WORK/daemon.log" ||
	fail "kvm:kvm_fpu not served by its classic program: $(grep 'kvm_fpu' "$WORK/daemon.log")"
scrape >"$WORK/m" || fail "scrape failed"
domain='domain="fpu,e2e"'
while read -r line; do
	eval "$(echo "$line" | tr ' ' '\n' | grep -E '^(vcpu|runs|fpu_reload)=[0-9]+$')"
	got=$(metric_sum "$WORK/m" fpu_guest_reloads_total "$domain" "vcpu=\"$vcpu\"")
	loads=$(metric_sum "$WORK/m" fpu_guest_loads_total "$domain" "vcpu=\"$vcpu\"")
	note "vcpu $vcpu: KVM_RUN=$runs kernel fpu_reload=$fpu_reload exporter reloads=$got loads=$loads"
	[ "$got" = "$fpu_reload" ] ||
		fail "fpu_guest_reloads_total{$domain,vcpu=\"$vcpu\"} = $got, KVM says $fpu_reload"
	[ "$loads" = "$fpu_reload" ] || fail "loads ($loads) != reloads ($fpu_reload) with the vCPU out of KVM_RUN"
done <"$WORK/ready"
[ "$(wc -l <"$WORK/ready")" = 3 ] || fail "expected 3 vCPUs in $(cat "$WORK/ready")"
info=$(metric_sum "$WORK/m" fpu_guest_info "$domain" "pid=\"$vmm\"" 'vmm="other"' 'cgroup="/')
[ "$info" = 1 ] || fail "fpu_guest_info for the VMM = $info"
saves=$(metric_sum "$WORK/m" fpu_guest_xstate_saves_total "$domain")
if kernel_before 5.16; then
	# No fpstate->is_guest before 5.16: the guest XSTATE_BV is not seen (README, Kernels).
	[ "$saves" = absent ] || fail "fpu_guest_xstate_saves_total{$domain} = $saves before 5.16, want absent"
else
	# one guest image per put: exactly the reloads (README, What the counts mean)
	[ "$saves" = "$(metric_sum "$WORK/m" fpu_guest_reloads_total "$domain")" ] ||
		fail "fpu_guest_xstate_saves_total{$domain} = $saves, want one per reload"
fi

scrape /status | jq -e --arg pid "$vmm" \
	'any(.guests[]; .domain == "fpu,e2e" and .name_source == "qemu-name" and (.pid | tostring) == $pid)' \
	>/dev/null || fail "/status does not list the VM with its name's source"

# The VM exits: its series leave the output.
kill "$vmm"
wait "$vmm" 2>/dev/null
scrape >"$WORK/m2" || fail "scrape failed"
if grep -q "$domain" "$WORK/m2"; then
	grep "$domain" "$WORK/m2" >&2
	fail "series of the exited VM are still exported"
fi
