#!/bin/bash
# t_xcr0.sh: fpu_guest_xcr0_info equals the XCR0 KVM holds per vCPU (KVM_GET_XCRS) and what KVM_SET_XCRS accepts, follows a new XCR0, and vcpu is KVM's index whatever the threads are called.
. "$(dirname "$0")/lib.sh"

require_kvm
start_daemon
# vCPU threads named like no VMM's: the vcpu label can only come from KVM.
"$BUILD/tests/testvmm" -name guest=xcr0 --runs 40,60 --vcpu-name 'worker %d' --hold-threads \
	--cpuid-xcr0 0x7,0x7 --xcr0 0x7,0x3 --xcr0-then 0x3,0x7 \
	--midway "$WORK/mid" --resume "$WORK/resume" --ready "$WORK/ready" >"$WORK/vmm.out" 2>&1 &
vmm=$!
at_exit "kill $vmm 2>/dev/null; wait $vmm 2>/dev/null"
domain='domain="xcr0"'

# check FILE PHASE: each vCPU of the result lines has one xcr0 series, with KVM's values, and its reloads.
check() {
	local file=$1 phase=$2 vcpu runs fpu_reload xcr0 cpuid_xcr0 supported kvm_supported unsup got n
	[ "$(wc -l <"$file")" = 2 ] || fail "$phase: expected 2 vCPUs in $(cat "$file")"
	while read -r line; do
		eval "$(tr ' ' '\n' <<<"$line" | grep -E '^(vcpu|runs|fpu_reload|xcr0|cpuid_xcr0|supported|kvm_supported)=(0x)?[0-9a-f]+$')"
		unsup=$(printf '0x%x' $((xcr0 & ~(kvm_supported | 1))))
		got=$(metric_sum "$WORK/m" fpu_guest_xcr0_info "$domain" "vcpu=\"$vcpu\"" "xcr0=\"$xcr0\"" \
			"supported=\"$kvm_supported\"" "unsupported=\"$unsup\"")
		n=$(grep -c "^fpu_guest_xcr0_info{$domain,vcpu=\"$vcpu\"," "$WORK/m")
		note "$phase: vcpu $vcpu: KVM xcr0=$xcr0 accepted=$kvm_supported (CPUID 0xD.0 $cpuid_xcr0 & supported $supported);" \
			"exporter: $(grep "^fpu_guest_xcr0_info{$domain,vcpu=\"$vcpu\"," "$WORK/m")"
		[ "$got" = 1 ] && [ "$n" = 1 ] ||
			fail "$phase: want one fpu_guest_xcr0_info{$domain,vcpu=\"$vcpu\",xcr0=\"$xcr0\",supported=\"$kvm_supported\",unsupported=\"$unsup\"}, have: $(grep fpu_guest_xcr0_info "$WORK/m")"
		got=$(metric_sum "$WORK/m" fpu_guest_reloads_total "$domain" "vcpu=\"$vcpu\"")
		[ "$got" = "$fpu_reload" ] || fail "$phase: fpu_guest_reloads_total{$domain,vcpu=\"$vcpu\"} = $got, KVM says $fpu_reload"
		note "$phase: vcpu $vcpu: KVM_RUN=$runs fpu_reload=$fpu_reload exporter reloads=$got"
	done <"$file"
	[ "$(metric_sum "$WORK/m" fpu_guest_reloads_total "$domain" 'vcpu="none"')" = absent ] ||
		fail "$phase: a vcpu=\"none\" series for vCPU threads KVM identified"
}

for _ in $(seq 100); do [ -s "$WORK/mid" ] && break; sleep 0.1; done
[ -s "$WORK/mid" ] || { cat "$WORK/vmm.out"; fail "the test VMM did not reach midway"; }
for t in /proc/$vmm/task/*; do
	c=$(cat "$t/comm")
	case $c in worker*) note "thread $(basename "$t"): comm \"$c\"" ;; esac
done
scrape >"$WORK/m" || fail "scrape failed"
check "$WORK/mid" midway

# the VMM writes a new XCR0 to each vCPU and runs the second half
touch "$WORK/resume"
for _ in $(seq 100); do [ -s "$WORK/ready" ] && break; sleep 0.1; done
[ -s "$WORK/ready" ] || { cat "$WORK/vmm.out"; fail "the test VMM did not finish"; }
scrape >"$WORK/m" || fail "scrape failed"
check "$WORK/ready" end
unique_series "$WORK/m"
