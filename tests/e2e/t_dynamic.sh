#!/bin/bash
# t_dynamic.sh: arch_prctl requests for AMX permission counted per cgroup by kind and result, exactly; no enlarged state where none was granted.
. "$(dirname "$0")/lib.sh"

N=25
start_daemon
make_cgroup amx
cg=$CG
out=$(run_in_cgroup "$cg" "$BUILD/tests/xcompperm" $N) || fail "xcompperm failed"
eval "$out"	# process_granted=.. process_refused=.. guest_granted=.. guest_refused=..
scrape >"$WORK/m" || fail "scrape failed"
xcomp_requests_match "$WORK/m" "$cg"
if ! grep -qw amx_tile /proc/cpuinfo; then
	# no AMX: nothing may be enlarged anywhere on the host
	enlarged=$(metric_sum "$WORK/m" fpu_xstate_enlarged_saves_total)
	[ "$enlarged" = absent ] || fail "enlarged fpstate saves reported on a CPU without AMX: $enlarged"
	note "no AMX on this CPU: every request refused as the kernel answered, no enlarged saves"
fi
