#!/bin/bash
# t_sanitized.sh: the daemon built with ASan+UBSan through VMs, signals and cgroup churn: no report, no leak, exit 0.
. "$(dirname "$0")/lib.sh"

require_kvm
EXPORTER=$BUILD/asan/fpu_exporter
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
printf 'cgroups:\n  grace_period: 1s\n' >"$WORK/fast.yaml"
start_daemon --config.file="$WORK/fast.yaml"

# before any VM: top's tables are empty (qsort() was once given their NULL arrays)
"$EXPORTER" top --json -d 0.5 --web.listen-address=127.0.0.1:$PORT >"$WORK/top.json" 2>"$WORK/top.err" &&
	jq -e '.vms == []' "$WORK/top.json" >/dev/null ||
	{ cat "$WORK/top.err" >&2; fail "top --json (sanitized) with no VM"; }

for round in 1 2 3; do
	make_cgroup "churn$round"
	cg=$CG
	run_in_cgroup "$cg" "$BUILD/tests/sigloop" 50 >/dev/null || fail "sigloop"
	run_in_cgroup "$cg" "$BUILD/tests/sigbad" frame 5 >/dev/null || fail "sigbad"
	"$BUILD/tests/testvmm" -name "guest=asan$round" --runs 20,30 --hold-threads \
		--ready "$WORK/ready$round" >/dev/null 2>&1 &
	vmm=$!
	for _ in $(seq 100); do [ -s "$WORK/ready$round" ] && break; sleep 0.1; done
	scrape >"$WORK/m" || fail "scrape failed in round $round"
	[ "$(metric_sum "$WORK/m" fpu_guest_reloads_total "domain=\"asan$round\"")" = 50 ] ||
		fail "round $round: reloads of asan$round"
	# the live views under the sanitizers too: the landing page, /status history, the top client
	scrape / | grep -q 'id="vms"' || fail "round $round: landing page"
	scrape /status | jq -e '.history.vms | type == "array"' >/dev/null || fail "round $round: /status history"
	"$EXPORTER" top --json -d 0.5 --web.listen-address=127.0.0.1:$PORT >"$WORK/top.json" 2>"$WORK/top.err" &&
		jq -e --arg d "asan$round" 'any(.vms[]; .domain == $d)' "$WORK/top.json" >/dev/null ||
		{ cat "$WORK/top.err" >&2; fail "round $round: top --json (sanitized) does not list asan$round"; }
	kill "$vmm"
	wait "$vmm"
	rmdir "$(cgroup_v2_root)$cg"
done
# Removals are noticed by a rescan (due after half the grace period, at one-second
# resolution) and pruned once the grace period has passed: gone within 4 s here.
scrape >"$WORK/m" || fail "scrape failed"
grep -q 'fpu_e2e_.*churn' "$WORK/m" || fail "removed cgroups left before the grace period"
for _ in $(seq 8); do
	sleep 0.5
	scrape >"$WORK/m" || fail "scrape failed"
	grep -q 'fpu_e2e_.*churn' "$WORK/m" || break
done
grep -q 'fpu_e2e_.*churn' "$WORK/m" && fail "removed cgroups still exported 4 s after removal"
grep -q 'domain="asan' "$WORK/m" && fail "exited VMs still exported"

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
status=$?
DAEMON_PID=
if [ $status != 0 ] || grep -q 'Sanitizer\|runtime error' "$WORK/daemon.log"; then
	cat "$WORK/daemon.log" >&2
	fail "sanitized daemon exited $status"
fi
