#!/bin/bash
# t_service.sh: sd_notify (READY after /metrics answers, WATCHDOG, STOPPING), capabilities dropped, SIGHUP reloads.
. "$(dirname "$0")/lib.sh"

require_root
"$BUILD/tests/notify_recv" "$WORK/notify.sock" >"$WORK/notify.log" &
at_exit "kill $!"
for _ in $(seq 50); do [ -S "$WORK/notify.sock" ] && break; sleep 0.1; done

PORT=$(free_port)
cat >"$WORK/config.yaml" <<YAML
web:
  telemetry_path: /metrics
cgroups:
  grace_period: 5m
YAML
NOTIFY_SOCKET=$WORK/notify.sock WATCHDOG_USEC=400000 \
	"$EXPORTER" --config.file="$WORK/config.yaml" --web.listen-address=127.0.0.1:$PORT \
	>"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!

# READY=1 comes only once /metrics answers: the moment it is seen, a scrape must succeed.
for _ in $(seq 200); do grep -q ' READY=1$' "$WORK/notify.log" && break; sleep 0.05; done
grep -q ' READY=1$' "$WORK/notify.log" || { cat "$WORK/daemon.log"; fail "no READY=1"; }
scrape >"$WORK/m" || fail "READY=1 was sent but /metrics does not answer"
grep -q '^fpu_exporter_probe_attached{probe="kvm:kvm_fpu"} 1$' "$WORK/m" ||
	fail "READY=1 was sent before the probes were attached"
grep -q ' STATUS=loading and attaching BPF programs$' "$WORK/notify.log" ||
	fail "no STATUS= while starting: $(cat "$WORK/notify.log")"

# WATCHDOG=1 at half the interval: 2 s at WATCHDOG_USEC=400ms is ~10 pings; ask for 4.
sleep 2
pings=$(grep -c ' WATCHDOG=1$' "$WORK/notify.log")
note "READY seen; $pings watchdog pings in ~2 s (WATCHDOG_USEC=400000)"
[ "$pings" -ge 4 ] || fail "only $pings WATCHDOG=1 in 2 s"

# Capabilities: none left once running (this kernel lets map reads through without CAP_BPF).
caps=$(awk '/^Cap(Eff|Prm|Amb):/ { printf "%s=%s ", $1, $2 }' /proc/$DAEMON_PID/status)
note "$caps"
for c in CapEff CapPrm CapAmb; do
	grep -q "^$c:[[:space:]]*0000000000000000$" /proc/$DAEMON_PID/status || fail "$c not empty: $caps"
done
grep -q 'capabilities kept: none' "$WORK/daemon.log" || fail "no privilege drop in the log"

# SIGHUP with a good config: new telemetry path, counters go on.
"$BUILD/tests/sigloop" 100 >/dev/null
before=$(metric_sum <(scrape) fpu_sigreturn_restores_total)
sed -i 's|telemetry_path: /metrics|telemetry_path: /m2|' "$WORK/config.yaml"
kill -HUP $DAEMON_PID
for _ in $(seq 50); do grep -q 'configuration reloaded' "$WORK/daemon.log" && break; sleep 0.1; done
grep -q 'configuration reloaded' "$WORK/daemon.log" || fail "no reload: $(tail -3 "$WORK/daemon.log")"
after=$(metric_sum <(scrape /m2) fpu_sigreturn_restores_total)
note "sigreturn restores before reload $before, after $after"
[ "$after" -ge "$before" ] || fail "counters went back after a reload: $before -> $after"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metrics")
[ "$code" = 404 ] || fail "old telemetry path still answers ($code)"
grep -q ' RELOADING=1$' "$WORK/notify.log" || fail "no RELOADING=1"

# SIGHUP with a bad config: refused, the old one stays.
printf 'web:\n  telemetry_path: /m3\n  bogus: 1\n' >"$WORK/config.yaml"
kill -HUP $DAEMON_PID
for _ in $(seq 50); do grep -q 'reload refused' "$WORK/daemon.log" && break; sleep 0.1; done
grep -q "reload refused, the old configuration stays: $WORK/config.yaml:3:3: unknown key \"bogus\" in section \"web\"" \
	"$WORK/daemon.log" || fail "bad reload not refused clearly: $(tail -2 "$WORK/daemon.log")"
scrape /m2 >/dev/null || fail "the old configuration is gone after a refused reload"

# /healthz and /status
[ "$(scrape /healthz)" = OK ] || fail "/healthz"
scrape /status >"$WORK/status.json" || fail "/status"
jq -e '.version and .kernel and (.probes | length >= 10) and all(.probes[]; .attached) and (.maps | length == 7) and all(.maps[]; .memory_bytes > 0)' \
	"$WORK/status.json" >/dev/null || fail "/status: $(cat "$WORK/status.json")"

kill -TERM $DAEMON_PID
wait $DAEMON_PID || fail "exit status $? after SIGTERM"
DAEMON_PID=
grep -q ' STOPPING=1$' "$WORK/notify.log" || fail "no STOPPING=1"

# service.user and bpf.stats_enabled: runs as nobody, counts BPF run time with the sysctl off.
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=0	# so only the daemon's own BPF_ENABLE_STATS can count
at_exit "sysctl -qw kernel.bpf_stats_enabled=$old_stats"
printf 'service:\n  user: nobody\nbpf:\n  stats_enabled: true\n' >"$WORK/user.yaml"
start_daemon --config.file="$WORK/user.yaml"
uid=$(awk '/^Uid:/ { print $2 }' /proc/$DAEMON_PID/status)
[ "$uid" = "$(id -u nobody)" ] || fail "running as uid $uid, not nobody"
"$BUILD/tests/sigloop" 50 >/dev/null
scrape >"$WORK/m" || fail "scrape as nobody"
runs=$(metric_sum "$WORK/m" fpu_exporter_bpf_runs_total 'probe="x86_fpu:x86_fpu_regs_deactivated"')
[ "$runs" != absent ] && [ "$runs" -gt 0 ] || fail "no BPF run counts with bpf.stats_enabled: $runs"
grep -q 'running as user nobody' "$WORK/daemon.log" || fail "no user switch in the log"
stop_daemon
note "service.user=nobody: uid $uid; bpf.stats_enabled: $runs runs counted with the sysctl at 0"
