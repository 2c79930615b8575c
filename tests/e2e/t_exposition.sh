#!/bin/bash
# t_exposition.sh: /metrics passes promtool, every probe is attached, HTTP answers as documented.
. "$(dirname "$0")/lib.sh"

start_daemon
"$BUILD/tests/sigloop" 10 >/dev/null	# some signal traffic so every family has samples
scrape >"$WORK/m" || fail "scrape failed"
promtool check metrics <"$WORK/m" >"$WORK/promtool.out" 2>&1 ||
	{ cat "$WORK/promtool.out"; fail "promtool check metrics complained"; }
[ -s "$WORK/promtool.out" ] && { cat "$WORK/promtool.out"; fail "promtool check metrics printed warnings"; }

for probe in x86_fpu:x86_fpu_regs_deactivated x86_fpu:x86_fpu_regs_activated kvm:kvm_fpu \
	signal:signal_deliver syscalls:sys_enter_rt_sigreturn x86_fpu:x86_fpu_xstate_check_failed \
	signal:signal_generate x86_fpu:x86_fpu_copy_dst x86_fpu:x86_fpu_dropped cgroup:cgroup_rmdir; do
	v=$(metric_sum "$WORK/m" fpu_exporter_probe_attached "probe=\"$probe\"")
	[ "$v" = 1 ] || fail "probe $probe attached=$v; log: $(cat "$WORK/daemon.log")"
done
for family in fpu_regs_activated_total fpu_regs_deactivated_total fpu_xstate_saves_total \
	fpu_xstate_component_saves_total fpu_signal_frames_total fpu_sigreturn_restores_total \
	fpu_exporter_build_info fpu_exporter_probe_attached; do
	grep -q "^# TYPE $family " "$WORK/m" || fail "family $family missing"
done
grep -q '^fpu_exporter_build_info{version="[0-9.]*",libbpf="[0-9.]*",kernel="' "$WORK/m" ||
	fail "build_info malformed"

type=$(curl -s -o /dev/null -w '%{content_type}' "http://127.0.0.1:$PORT/metrics")
[ "$type" = "text/plain; version=0.0.4; charset=utf-8" ] || fail "content type: $type"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/nope")
[ "$code" = 404 ] || fail "unknown path answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/metrics")
[ "$code" = 405 ] || fail "POST answered $code"
scrape / | grep -q 'href="/metrics"' || fail "landing page has no link to /metrics"
scrape / | grep -q 'kvm:kvm_fpu: attached' || fail "landing page lacks probe status"

# --web.telemetry-path moves the endpoint
stop_daemon
start_daemon --web.telemetry-path=/fpu
scrape /fpu | grep -q '^fpu_exporter_build_info' || fail "/fpu does not serve metrics"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metrics")
[ "$code" = 404 ] || fail "/metrics answered $code with the path moved"

# SIGTERM: clean exit 0, and its programs are gone
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
status=$?
DAEMON_PID=
[ $status = 0 ] || fail "exit status after SIGTERM: $status"
grep -q 'shutting down' "$WORK/daemon.log" || fail "no shutdown line in the log"
