#!/bin/bash
# t_avx.sh: a workload that sleeps with YMM dirty shows the avx component in its cgroup's saves.
. "$(dirname "$0")/lib.sh"

N=2000
grep -qw avx /proc/cpuinfo || skip_or_fail "this CPU has no AVX"
start_daemon
make_cgroup avx
cg=$CG
run_in_cgroup "$cg" "$BUILD/tests/avxspin" $N >/dev/null || fail "avxspin failed"
scrape >"$WORK/m" || fail "scrape failed"
avx=$(metric_sum "$WORK/m" fpu_xstate_component_saves_total "cgroup=\"$cg\"" 'component="avx"')
saves=$(metric_sum "$WORK/m" fpu_regs_deactivated_total "cgroup=\"$cg\"")
grep "cgroup=\"$cg\"" "$WORK/m" | grep fpu_xstate_saves_total | sed 's/^/  /'
note "sleeps=$N deactivated=$saves avx_saves=$avx"
# Every sleep switches the task out with ymm8 live; allow for sleeps that did not block.
[ "$avx" != absent ] && [ "$avx" -ge $((N / 2)) ] ||
	fail "fpu_xstate_component_saves_total{cgroup=\"$cg\",component=\"avx\"} = $avx, want >= $((N / 2))"
[ "$saves" -ge "$avx" ] || fail "deactivated ($saves) < avx saves ($avx)"
