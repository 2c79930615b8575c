#!/bin/bash
# g_nosysadmin.sh: in a test-kernels guest: the daemon as the DaemonSet runs it, root without CAP_SYS_ADMIN, under the kernel's own perf_event_paranoid (Debian's 3).
# There perf_event_open needs CAP_SYS_ADMIN (Debian's patch), so no classic tracepoint attaches,
# and the kvm module's BTF cannot be read (BPF_BTF_GET_FD_BY_ID): every probe must still attach,
# the syscalls: ones on raw sys_enter/sys_exit, and count exactly (README, "How it works").
. "$(dirname "$0")/../e2e/lib.sh"

require_kvm
paranoid=$(cat /proc/sys/kernel/perf_event_paranoid)
cat >"$WORK/nosysadmin" <<WRAP
#!/bin/sh
exec setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin "$BUILD/fpu_exporter" "\$@"
WRAP
chmod 755 "$WORK/nosysadmin"
EXPORTER=$WORK/nosysadmin
start_daemon --log.level=debug

RUNS=41,17
"$BUILD/tests/testvmm" -name guest=nosysadmin --runs $RUNS --hold-threads --vcpu-name "worker %d" \
	--ready "$WORK/ready" >"$WORK/vmm.out" 2>&1 &
vmm=$!
at_exit "kill $vmm 2>/dev/null; wait $vmm 2>/dev/null"
for _ in $(seq 100); do [ -s "$WORK/ready" ] && break; sleep 0.1; done
[ -s "$WORK/ready" ] || { cat "$WORK/vmm.out"; fail "the test VMM did not get ready"; }
scrape >"$WORK/m" || fail "scrape failed"
unattached=$(awk '/^fpu_exporter_probe_attached\{/ && $NF == 0' "$WORK/m" | sed 's/.*probe="\([^"]*\)".*/\1/' | sort | tr '\n' ' ')
kvm_prog=$(sed -n 's/.*probe kvm:kvm_fpu: attached (\(.*\))$/\1/p' "$WORK/daemon.log")
note "perf_event_paranoid $paranoid, no CAP_SYS_ADMIN: kvm:kvm_fpu by ${kvm_prog:-nothing}; unattached: ${unattached:-none}"
if [ "$paranoid" -gt 2 ]; then
	[ "$kvm_prog" = kvm_fpu ] || fail "kvm:kvm_fpu: want the raw tracepoint program, got ${kvm_prog:-none}"
	grep -q 'probe syscalls:sys_enter_rt_sigreturn: attached (sys_enter_rt_sigreturn_btf)' "$WORK/daemon.log" ||
		fail "syscalls:sys_enter_rt_sigreturn not on raw sys_enter: $(grep rt_sigreturn "$WORK/daemon.log")"
else
	[ "$kvm_prog" = kvm_fpu_classic ] || fail "kvm:kvm_fpu: want the classic program, got ${kvm_prog:-none}"
fi
[ -z "$unattached" ] || fail "unattached probes: $unattached"

# Signal restores and AMX permission requests: exact, but for a run of sys_enter's program the
# kernel skipped (7.x, counted): a sigreturn can be among those, nothing else.
N=200
make_cgroup nosysadmin
cg=$CG
run_in_cgroup "$cg" "$BUILD/tests/sigloop" $N >/dev/null || fail "sigloop failed"
out=$(run_in_cgroup "$cg" "$BUILD/tests/xcompperm" 5) || fail "xcompperm failed"
eval "$out"	# process_granted=.. process_refused=.. guest_granted=.. guest_refused=..
scrape >"$WORK/m2" || fail "scrape failed"
restores=$(metric_sum "$WORK/m2" fpu_sigreturn_restores_total "cgroup=\"$cg\"")
sys_missed=$(metric_sum "$WORK/m2" fpu_exporter_bpf_missed_runs_total 'probe="syscalls:sys_enter_rt_sigreturn"')
note "$N signals: restores $restores (runs skipped by the kernel on sys_enter: $sys_missed)"
[ "$restores" = $N ] || { [ "$restores" -lt $N ] && [ $((restores + sys_missed)) -ge $N ]; } ||
	fail "fpu_sigreturn_restores_total = $restores for $N sigreturns, $sys_missed runs skipped"
xcomp_requests_match "$WORK/m2" "$cg"

# On 7.x a raw program on kvm_fpu runs preemptibly and the kernel skips a run that finds
# one in progress on its CPU (README, "How it works"): each skip is in the missed-runs counter,
# so loads, reloads and skips add up to KVM's loads and puts exactly, VM-wide.
missed=$(metric_sum "$WORK/m" fpu_exporter_bpf_missed_runs_total 'probe="kvm:kvm_fpu"')
kernel=0 loads=0 reloads=0
while read -r line; do
	eval "$(echo "$line" | tr ' ' '\n' | grep -E '^(vcpu|fpu_reload)=[0-9]+$')"
	got=$(metric_sum "$WORK/m" fpu_guest_reloads_total 'domain="nosysadmin"' "vcpu=\"$vcpu\"")
	got_loads=$(metric_sum "$WORK/m" fpu_guest_loads_total 'domain="nosysadmin"' "vcpu=\"$vcpu\"")
	note "vcpu $vcpu: kernel fpu_reload=$fpu_reload exporter reloads=$got loads=$got_loads"
	[ "$kvm_prog" = kvm_fpu ] || [ "$got" = "$fpu_reload" ] || fail "vcpu $vcpu: exporter $got, kernel $fpu_reload"
	kernel=$((kernel + fpu_reload)) loads=$((loads + got_loads)) reloads=$((reloads + got))
done <"$WORK/ready"
note "KVM loads and puts $((2 * kernel)); counted $((loads + reloads)), skipped by the kernel $missed"
[ "$kvm_prog" = kvm_fpu ] || [ "$missed" = 0 ] || fail "the classic program missed $missed runs"
[ $((loads + reloads + missed)) = $((2 * kernel)) ] ||
	fail "loads $loads + reloads $reloads + missed $missed != KVM's $((2 * kernel)) loads and puts"
