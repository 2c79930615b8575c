#!/bin/bash
# t_sigreturn_compat.sh: ia32 sigreturns are counted only with probes.sigreturn_compat, then exactly (the classic raw_syscalls:sys_enter).
. "$(dirname "$0")/lib.sh"

N=300
"$BUILD/tests/sigloop32" 1 >/dev/null 2>&1 || skip_or_fail "this kernel runs no ia32 binaries"
printf 'probes:\n  sigreturn_compat: true\n' >"$WORK/compat.yaml"

for compat in off on; do
	if [ $compat = on ]; then start_daemon --config.file="$WORK/compat.yaml"; else start_daemon; fi
	make_cgroup "ia32_$compat"
	cg=$CG
	run_in_cgroup "$cg" "$BUILD/tests/sigloop32" $N >/dev/null || fail "sigloop32 failed"
	scrape >"$WORK/m" || fail "scrape failed"
	restores=$(metric_sum "$WORK/m" fpu_sigreturn_restores_total "cgroup=\"$cg\"")
	frames=$(metric_sum "$WORK/m" fpu_signal_frames_total "cgroup=\"$cg\"")
	attached=$(metric_sum "$WORK/m" fpu_exporter_probe_attached 'probe="raw_syscalls:sys_enter"')
	note "compat $compat: ia32 signals=$N frames=$frames restores=$restores raw sys_enter attached=$attached"
	[ "$frames" = $N ] || fail "frames = $frames, want $N"
	if [ $compat = off ]; then
		[ "$attached" = absent ] || fail "raw_syscalls:sys_enter attached without the option"
		[ "$restores" = absent ] || fail "ia32 restores counted without the option: $restores"
	else
		[ "$attached" = 1 ] || fail "raw_syscalls:sys_enter not attached with the option"
		[ "$restores" = $N ] || fail "ia32 restores = $restores, want $N"
		# root may open perf events: the classic program serves (probes.c, prefer_classic)
		grep -q 'probe raw_syscalls:sys_enter: attached (sys_enter_compat_sigreturn_classic)' "$WORK/daemon.log" ||
			fail "raw_syscalls:sys_enter not served by its classic program: $(grep 'sys_enter' "$WORK/daemon.log")"
	fi
	stop_daemon
done
