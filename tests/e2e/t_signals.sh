#!/bin/bash
# t_signals.sh: a workload in a fresh cgroup handles N signals: frames and sigreturn restores are exactly N.
. "$(dirname "$0")/lib.sh"

N=500
start_daemon
make_cgroup sig
cg=$CG
run_in_cgroup "$cg" "$BUILD/tests/sigloop" $N >/dev/null || fail "sigloop failed"
scrape >"$WORK/m" || fail "scrape failed"
restores=$(metric_sum "$WORK/m" fpu_sigreturn_restores_total "cgroup=\"$cg\"")
frames=$(metric_sum "$WORK/m" fpu_signal_frames_total "cgroup=\"$cg\"")
failures=$(metric_sum "$WORK/m" fpu_sigreturn_failures_total "cgroup=\"$cg\"")
note "signals=$N restores=$restores frames=$frames failures=$failures"
[ "$restores" = $N ] || fail "fpu_sigreturn_restores_total{cgroup=\"$cg\"} = $restores, want $N"
[ "$frames" = $N ] || fail "fpu_signal_frames_total{cgroup=\"$cg\"} = $frames, want $N"
[ "$failures" = absent ] || fail "unexpected sigreturn failures: $failures"
