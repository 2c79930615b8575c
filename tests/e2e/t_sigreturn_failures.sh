#!/bin/bash
# t_sigreturn_failures.sh: N spoiled-magic and N unrestorable frames are counted exactly by reason; a #GP SIGSEGV is not.
. "$(dirname "$0")/lib.sh"

N=40
start_daemon
make_cgroup magic
cg_magic=$CG
make_cgroup frame
cg_frame=$CG
make_cgroup gp
cg_gp=$CG
run_in_cgroup "$cg_magic" "$BUILD/tests/sigbad" magic $N >/dev/null || fail "sigbad magic failed"
run_in_cgroup "$cg_frame" "$BUILD/tests/sigbad" frame $N >/dev/null || fail "sigbad frame failed"
run_in_cgroup "$cg_gp" "$BUILD/tests/sigbad" gp $N >/dev/null || fail "sigbad gp failed"
scrape >"$WORK/m" || fail "scrape failed"

check() {	# check CGROUP REASON WANT
	local got
	got=$(metric_sum "$WORK/m" fpu_sigreturn_failures_total "cgroup=\"$1\"" "reason=\"$2\"")
	note "cgroup $1 reason $2: $got (want $3)"
	[ "$got" = "$3" ] || fail "fpu_sigreturn_failures_total{cgroup=\"$1\",reason=\"$2\"} = $got, want $3"
}
check "$cg_magic" bad_magic $N
check "$cg_magic" bad_frame absent
check "$cg_frame" bad_frame $N
# Before 5.14 ("x86/fpu/signal: Sanitize the xstate check on sigframe"), __fpu__restore_sig() fired x86_fpu_xstate_check_failed
# whenever check_for_xstate() failed, an unreadable frame included (measured on 5.10).
if kernel_before 5.14; then
	check "$cg_frame" bad_magic $N
else
	check "$cg_frame" bad_magic absent
fi
check "$cg_gp" bad_frame absent
frames=$(metric_sum "$WORK/m" fpu_signal_frames_total "cgroup=\"$cg_gp\"")
[ "$frames" -ge $N ] || fail "the #GP SIGSEGVs set up $frames frames, want >= $N"
restores=$(metric_sum "$WORK/m" fpu_sigreturn_restores_total "cgroup=\"$cg_magic\"")
[ "$restores" -ge $N ] && [ "$restores" -le $((N + 10)) ] || fail "restores in $cg_magic: $restores"
