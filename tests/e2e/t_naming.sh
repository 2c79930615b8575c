#!/bin/bash
# t_naming.sh: VMs named from libvirt's cgroup scopes, four VMMs' vCPU thread names, vCPUs named by KVM whatever their threads, cgroup info.
. "$(dirname "$0")/lib.sh"

require_kvm
start_daemon
V2=$(cgroup_v2_root)

# run_vmm TAG CGROUP RUNS [testvmm flags]: a held test VMM in CGROUP ("" for none); sets VMM_PID.
run_vmm() {
	local tag=$1 cg=$2 runs=$3
	shift 3
	if [ -n "$cg" ]; then
		mkdir -p "$V2$cg"
		at_exit "(cd '$V2' && rmdir -p '${cg#/}' 2>/dev/null)"	# the parents it made too
		# exec all the way down, so $! is the VMM itself
		(exec sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$V2$cg" \
			"$BUILD/tests/testvmm" --runs "$runs" --hold-threads --ready "$WORK/$tag" "$@" >/dev/null 2>&1) &
	else
		"$BUILD/tests/testvmm" --runs "$runs" --hold-threads --ready "$WORK/$tag" "$@" >/dev/null 2>&1 &
	fi
	VMM_PID=$!
	at_exit "kill $VMM_PID 2>/dev/null; wait $VMM_PID 2>/dev/null"
	for _ in $(seq 100); do [ -s "$WORK/$tag" ] && return 0; sleep 0.1; done
	fail "test VMM $tag did not get ready"
}

# expect_vm TAG DOMAIN VMM: every vCPU of the VMM under its domain and index, reloads as KVM counts them.
expect_vm() {
	local tag=$1 domain=$2 vmm=$3 vcpu runs fpu_reload got
	while read -r line; do
		eval "$(tr ' ' '\n' <<<"$line" | grep -E '^(vcpu|runs|fpu_reload)=[0-9]+$')"
		got=$(metric_sum "$WORK/m" fpu_guest_reloads_total "domain=\"$domain\"" "vcpu=\"$vcpu\"")
		[ "$got" = "$fpu_reload" ] || fail "$tag: {domain=\"$domain\",vcpu=\"$vcpu\"} = $got, KVM says $fpu_reload"
	done <"$WORK/$tag"
	[ "$(metric_sum "$WORK/m" fpu_guest_info "domain=\"$domain\"" "vmm=\"$vmm\"")" = 1 ] ||
		fail "$tag: no fpu_guest_info{domain=\"$domain\",vmm=\"$vmm\"}: $(grep fpu_guest_info "$WORK/m")"
	note "$tag: domain=\"$domain\" vmm=\"$vmm\", reloads per vCPU exact"
}

# libvirt's layouts, no -name: systemd (scope with and without libvirt/) and cgroupfs
run_vmm scope1 '/machine.slice/machine-qemu\x2d7\x2dweb\x2dfront.scope/libvirt' 11,12
run_vmm scope2 '/machine.slice/machine-qemu\x2d8\x2ddb.scope' 13
run_vmm scope3 '/machine/qemu-9-legacy.libvirt-qemu' 14,15
# -name with an escaped comma, and one inside a libvirt scope (the scope wins, as for libvirt)
run_vmm named '' 16 -name guest=a,,b,debug-threads=on
# the other VMMs' thread names
run_vmm fc '' 17,18 --comm firecracker --vcpu-name 'fc_vcpu %d' --id fc-one
run_vmm ch '' 19,20 --comm cloud-hyperviso --vcpu-name 'vcpu%d'
ch_pid=$VMM_PID
run_vmm cros '' 21,22 --comm crosvm --vcpu-name 'crosvm_vcpu%d'
cros_pid=$VMM_PID
# vCPU threads named like no VMM's
run_vmm other '' 23,24 -name guest=threads --vcpu-name 'worker%d'

scrape >"$WORK/m" || fail "scrape failed"
expect_vm scope1 web-front other
expect_vm scope2 db other
expect_vm scope3 legacy other
expect_vm named 'a,b' other
expect_vm fc fc-one firecracker
expect_vm ch "cloud-hyperviso-$ch_pid" cloud-hypervisor
expect_vm cros "crosvm-$cros_pid" crosvm
# KVM says which vCPU a thread runs (vcpu_idx, the creation order, which testvmm reports as vcpu=):
# threads named like no vCPU get their index all the same, and no vcpu="none"
expect_vm other threads other
[ "$(metric_sum "$WORK/m" fpu_guest_reloads_total 'domain="threads"' 'vcpu="none"')" = absent ] ||
	fail "threads named like no vCPU: a vcpu=\"none\" series although KVM named each vCPU"
note "threads named like no vCPU: labelled with KVM's vcpu_idx"
scrape /status | jq -e '[.guests[] | select(.domain == "web-front")][0].name_source == "libvirt-cgroup"' \
	>/dev/null || fail "/status: web-front not named from libvirt's cgroup"

# fpu_cgroup_info joins the unit to the cgroup of host series
make_cgroup 'unit.service'
run_in_cgroup "$CG" "$BUILD/tests/sigloop" 20 >/dev/null
scrape >"$WORK/m" || fail "scrape failed"
[ "$(metric_sum "$WORK/m" fpu_cgroup_info "cgroup=\"$CG\"" "unit=\"fpu_e2e_$$_unit.service\"")" = 1 ] ||
	fail "no fpu_cgroup_info for $CG: $(grep fpu_cgroup_info "$WORK/m" | head -3)"
