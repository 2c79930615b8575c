#!/bin/bash
# g_daemon.sh: in a test-kernels guest: the daemon starts, each probe's status, N signals counted exactly; the scrape goes to the host for promtool.
. "$(dirname "$0")/../e2e/lib.sh"

N=500
start_daemon --log.level=debug
make_cgroup sig
cg=$CG
run_in_cgroup "$cg" "$BUILD/tests/sigloop" $N >/dev/null || fail "sigloop failed"
scrape >"$WORK/m" || fail "scrape failed"
scrape /status >"$WORK/status" || fail "/status failed"
jq -r '.probes[] | "PROBE \(.probe) \(if .attached then 1 else 0 end) \(.why // "")"' "$WORK/status" >"$REPORT"
sed 's/^/METRIC /' "$WORK/m" >"$REPORT"
grep -E '^fpu_exporter: (error|warn)' "$WORK/daemon.log" | sed 's/^/  daemon: /'
restores=$(metric_sum "$WORK/m" fpu_sigreturn_restores_total "cgroup=\"$cg\"")
frames=$(metric_sum "$WORK/m" fpu_signal_frames_total "cgroup=\"$cg\"")
failures=$(metric_sum "$WORK/m" fpu_sigreturn_failures_total "cgroup=\"$cg\"")
note "signals=$N restores=$restores frames=$frames failures=$failures"
[ "$restores" = $N ] || fail "fpu_sigreturn_restores_total{cgroup=\"$cg\"} = $restores, want $N"
[ "$frames" = $N ] || fail "fpu_signal_frames_total{cgroup=\"$cg\"} = $frames, want $N"
[ "$failures" = absent ] || fail "unexpected sigreturn failures: $failures"
