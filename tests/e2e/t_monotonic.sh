#!/bin/bash
# t_monotonic.sh: counters never go back while members leave (depth folding, a unit restarted at its path, vCPU threads that exit); no series twice; a 500-cgroup, 20-VM run counted whole.
. "$(dirname "$0")/lib.sh"

require_kvm
V2=$(cgroup_v2_root)
printf 'cgroups:\n  grace_period: 2s\n  depth: 2\n' >"$WORK/mono.yaml"
start_daemon --config.file="$WORK/mono.yaml"
n=0
# snap: scrape, check it has no series twice and that no counter went back since the last one
snap() {
	scrape >"$WORK/s$((n + 1))" || fail "scrape failed"
	unique_series "$WORK/s$((n + 1))"
	[ $n = 0 ] || monotonic "$WORK/s$n" "$WORK/s$((n + 1))"
	n=$((n + 1))
	S=$WORK/s$n
}

# 1. depth 2 folds /top/x/a and /top/x/b into /top/x; a removed child's count stays in it
top="/fpu_e2e_$$_mono"
mkdir -p "$V2$top/x/a" "$V2$top/x/b" "$V2$top/unit.service"
at_exit "rmdir '$V2$top/x/a' '$V2$top/x/b' '$V2$top/x' '$V2$top/unit.service' '$V2$top' 2>/dev/null"
run_in_cgroup "$top/x/a" "$BUILD/tests/sigloop" 10 >/dev/null
run_in_cgroup "$top/x/b" "$BUILD/tests/sigloop" 5 >/dev/null
snap
[ "$(metric_sum "$S" fpu_sigreturn_restores_total "cgroup=\"$top/x\"")" = 15 ] || fail "depth 2: $top/x is not 15"
rmdir "$V2$top/x/a"

# 2. a unit restarted at the same path: a new cgroup id, the same series, counting on
run_in_cgroup "$top/unit.service" "$BUILD/tests/sigloop" 5 >/dev/null
snap
rmdir "$V2$top/unit.service" && mkdir "$V2$top/unit.service"
run_in_cgroup "$top/unit.service" "$BUILD/tests/sigloop" 7 >/dev/null

# 3. vCPU threads named like no VMM's (labelled by KVM's vcpu_idx) run and exit while the VM lives
"$BUILD/tests/testvmm" -name guest=mono --vcpu-name "worker %d" --runs 30,40 --ready "$WORK/ready" \
	>"$WORK/vmm.out" 2>&1 &
vmm=$!
at_exit "kill $vmm 2>/dev/null; wait $vmm 2>/dev/null"
for _ in $(seq 100); do [ -s "$WORK/ready" ] && break; sleep 0.1; done
[ -s "$WORK/ready" ] || fail "the test VMM did not get ready"

# through the grace period and past it, every scrape no lower than the one before
for _ in $(seq 12); do snap; sleep 0.5; done
got=$(metric_sum "$S" fpu_sigreturn_restores_total "cgroup=\"$top/x\"")
[ "$got" = 15 ] || fail "$top/x after its child left: $got, want 15"
got=$(metric_sum "$S" fpu_sigreturn_restores_total "cgroup=\"$top/unit.service\"")
[ "$got" = 12 ] || fail "$top/unit.service restarted: $got, want 12 (5 + 7)"
got=$(metric_sum "$S" fpu_guest_reloads_total 'domain="mono"' 'vcpu="0"'):$(metric_sum "$S" fpu_guest_reloads_total 'domain="mono"' 'vcpu="1"')
[ "$got" = 30:40 ] || fail "vCPUs 0 and 1 after their threads exited: $got, want 30:40"
[ "$(metric_sum "$S" fpu_guest_reloads_total 'domain="mono"')" = 70 ] || fail "domain mono: not 70 in all"
note "depth fold, unit restart and exited vCPU threads: $n scrapes, none went back, none had a series twice"
stop_daemon

# 4. a small host, counted whole: 500 cgroups with 2 signals each, 20 VMs of 2 vCPUs
start_daemon
for i in $(seq 500); do
	mkdir "$V2$top-$i"
	run_in_cgroup "$top-$i" "$BUILD/tests/sigloop" 2 >/dev/null
done
at_exit "for k in \$(seq 500); do rmdir '$V2$top-'\$k; done"
pids=()
for i in $(seq 20); do
	"$BUILD/tests/testvmm" -name "guest=small-$i" --runs 3,4 --ready "$WORK/r$i" >/dev/null 2>&1 &
	pids+=($!)
done
at_exit "kill ${pids[*]} 2>/dev/null"
for i in $(seq 20); do for _ in $(seq 100); do [ -s "$WORK/r$i" ] && break; sleep 0.1; done; done
scrape >"$WORK/small" || fail "scrape failed"
unique_series "$WORK/small"
promtool check metrics <"$WORK/small" || fail "promtool"
bad=$(awk -v top="$top-" '/^fpu_sigreturn_restores_total\{/ && index($0, "cgroup=\"" top) { n++; if ($NF != 2) bad++ }
	END { if (n != 500) print "only " n " cgroups"; else if (bad) print bad " cgroups not at 2" }' "$WORK/small")
[ -z "$bad" ] || fail "500 cgroups: $bad"
for i in $(seq 20); do
	[ "$(metric_sum "$WORK/small" fpu_guest_reloads_total "domain=\"small-$i\"")" = 7 ] || fail "VM small-$i not 7"
done
full=$(awk '/^fpu_exporter_map_full_total/ { s += $NF } END { print s + 0 }' "$WORK/small")
[ "$full" = 0 ] || fail "map full: $full events lost"
note "500 cgroups x 2 signals and 20 VMs x 7 reloads: all exact, no map full"
