#!/bin/bash
# t_top.sh: `fpu_exporter top` in tmux against two paced test VMMs: order, rate within 20%, vCPUs, filter, quit, --once, --json, daemon down.
. "$(dirname "$0")/lib.sh"

require_kvm
command -v tmux >/dev/null || skip_or_fail "tmux is not installed (make deps-test)"
HI_RATE=200	# KVM_RUNs per second per vCPU, 2 vCPUs: 400 fpu_reloads a second
LO_RATE=50	# 1 vCPU
HI=e2etop$$-hi LO=e2etop$$-lo
start_daemon
for vm in "$HI --runs 0,0 --rate $HI_RATE" "$LO --runs 0 --rate $LO_RATE"; do
	set -- $vm
	"$BUILD/tests/testvmm" -name "guest=$1" "${@:2}" --ready "$WORK/ready.$1" >"$WORK/vmm.$1" 2>&1 &
	at_exit "kill $! 2>/dev/null; wait $! 2>/dev/null"
done
for _ in $(seq 100); do [ -s "$WORK/ready.$HI" ] && [ -s "$WORK/ready.$LO" ] && break; sleep 0.1; done
[ -s "$WORK/ready.$HI" ] && [ -s "$WORK/ready.$LO" ] || fail "the test VMMs did not get ready"

# within20 GOT WANT: |GOT - WANT| <= 20% of WANT
within20() { awk -v g="$1" -v w="$2" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= w * 0.2) }'; }

# ---- interactive, in tmux; other VMs on the host are kept out by the filter flag
SOCK=fpu_e2e_top_$$
tmux -L "$SOCK" new-session -d -x 160 -y 40 \
	"'$EXPORTER' top --web.listen-address=127.0.0.1:$PORT -d 2 --filter=e2etop$$; echo EXIT=\$? >'$WORK/top.exit'; sleep 60"
at_exit "tmux -L '$SOCK' kill-server 2>/dev/null"
pane() { tmux -L "$SOCK" capture-pane -p; }
# two refreshes: the first screen has totals only, rates come from the next readings
sleep 5
pane >"$WORK/pane1"
first=$(awk '/^VM /{ t = 1; next } t && /^[+-] / { print $2, $3; exit }' "$WORK/pane1")
note "first VM row: $first (true rate of $HI: $((2 * HI_RATE))/s)"
[ "${first%% *}" = "$HI" ] || { cat "$WORK/pane1"; fail "$HI is not listed first"; }
within20 "${first#* }" $((2 * HI_RATE)) || { cat "$WORK/pane1"; fail "rate ${first#* } not within 20% of $((2 * HI_RATE))"; }
lo=$(awk -v n="$LO" '$2 == n { print $3 }' "$WORK/pane1")
within20 "$lo" "$LO_RATE" || { cat "$WORK/pane1"; fail "$LO rate $lo not within 20% of $LO_RATE"; }

# Enter expands the selected (first) VM into its vCPUs
tmux -L "$SOCK" send-keys Enter
sleep 1
pane >"$WORK/pane2"
awk -v n="$HI" '$2 == n { t = 1; next } t && $1 == "vcpu" { print $2 } t && /^[+-] / { exit }' \
	"$WORK/pane2" | sort | tr '\n' ' ' >"$WORK/vcpus"
note "expanded $HI: vcpus $(cat "$WORK/vcpus")"
[ "$(cat "$WORK/vcpus")" = "0 1 " ] || { cat "$WORK/pane2"; fail "expanding $HI did not show vCPUs 0 and 1"; }

# / filters by name
tmux -L "$SOCK" send-keys / "$LO" Enter
sleep 1
pane >"$WORK/pane3"
grep -q "^[+-] $LO " "$WORK/pane3" && ! grep -q " $HI " "$WORK/pane3" ||
	{ cat "$WORK/pane3"; fail "filter \"$LO\" did not leave only $LO"; }
note "filter: only $LO listed"

# v: the cgroup view
tmux -L "$SOCK" send-keys v
sleep 1
pane | grep -q '^CGROUP ' || { pane; fail "v did not switch to the cgroup view"; }

# SIGWINCH: drawn at 60x10 by a refresh, then paused (no more refreshes) and grown to 160x40:
# only a redraw on SIGWINCH brings back what the narrow screen cut (the end of the key line)
tmux -L "$SOCK" send-keys v
tmux -L "$SOCK" resize-window -x 60 -y 10
sleep 2.5
pane >"$WORK/small"
sed -n 3p "$WORK/small" | grep -q '^VM ' && [ "$(awk 'length > 60' "$WORK/small" | wc -l)" = 0 ] ||
	{ cat "$WORK/small"; fail "at 60x10 the table was not drawn to fit"; }
tmux -L "$SOCK" send-keys p
sleep 0.5
tmux -L "$SOCK" resize-window -x 160 -y 40
sleep 0.5
pane >"$WORK/big"
sed -n 1p "$WORK/big" | grep -q PAUSED && sed -n 2p "$WORK/big" | grep -q 'enter: vCPUs$' &&
	sed -n 3p "$WORK/big" | grep -q '^VM ' || { cat "$WORK/big"; fail "back at 160x40 the screen was not redrawn"; }
note "SIGWINCH: drawn to fit 60x10, redrawn at 160x40 while paused"
tmux -L "$SOCK" send-keys p
tmux -L "$SOCK" send-keys q
for _ in $(seq 50); do [ -s "$WORK/top.exit" ] && break; sleep 0.1; done
[ "$(cat "$WORK/top.exit" 2>/dev/null)" = EXIT=0 ] || fail "q: top exited with $(cat "$WORK/top.exit" 2>/dev/null)"
note "q: exit 0"

# ---- --once: one table, both VMs, rates from two reads one interval apart
"$EXPORTER" top --once -d 2 --web.listen-address=127.0.0.1:$PORT >"$WORK/once" 2>"$WORK/once.err" ||
	fail "top --once failed: $(cat "$WORK/once.err")"
hi=$(awk -v n="$HI" '$1 == n { print $2 }' "$WORK/once")
lo=$(awk -v n="$LO" '$1 == n { print $2 }' "$WORK/once")
note "--once: $HI $hi/s, $LO $lo/s"
[ -n "$hi" ] && [ -n "$lo" ] || { cat "$WORK/once"; fail "--once does not list both VMs"; }
within20 "$hi" $((2 * HI_RATE)) && within20 "$lo" "$LO_RATE" || { cat "$WORK/once"; fail "--once rates off"; }
grep -q '^CGROUP ' "$WORK/once" || fail "--once has no cgroup table"

# ---- --json parses, with the vCPUs
"$EXPORTER" top --json -d 1 --web.listen-address=127.0.0.1:$PORT >"$WORK/json" || fail "top --json failed"
jq -e --arg hi "$HI" --arg lo "$LO" \
	'(.vms | map(.domain) | index($hi) != null and index($lo) != null) and
	 ([.vms[] | select(.domain == $hi) | .vcpus | length] == [2])' "$WORK/json" >/dev/null ||
	{ cat "$WORK/json"; fail "--json does not hold both VMs with the vCPUs"; }
note "--json: both VMs, $HI with 2 vCPUs"

# ---- the cgroup view: a task that is switched out with AVX state live shows as AVX saves
make_cgroup avx
# sh joins the cgroup and execs the workload, so $! is the workload itself
sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$(cgroup_v2_root)$CG" "$BUILD/tests/avxspin" 1000000 \
	>/dev/null &
spin=$!
at_exit "kill $spin 2>/dev/null; wait $spin 2>/dev/null"
sleep 0.5
"$EXPORTER" top --json -d 1 --filter="$CG" --web.listen-address=127.0.0.1:$PORT >"$WORK/cg.json" ||
	fail "top --json --filter failed"
kill $spin
row=$(jq -c --arg cg "$CG" '.cgroups[] | select(.cgroup == $cg)' "$WORK/cg.json")
note "cgroup view: $row"
echo "$row" | jq -e '.saves_per_second > 100 and .avx_share > 0.5' >/dev/null ||
	fail "avxspin's cgroup: want saves/s > 100 with AVX in most of them"

# ---- the daemon is down: one line, exit 1
port=$PORT
stop_daemon
"$EXPORTER" top --once --web.listen-address=127.0.0.1:$port >"$WORK/down" 2>"$WORK/down.err"
rc=$?
note "daemon down: exit $rc: $(cat "$WORK/down.err")"
[ $rc = 1 ] || fail "daemon down: exit $rc, want 1"
[ "$(wc -l <"$WORK/down.err")" = 1 ] && grep -q 'cannot reach the daemon' "$WORK/down.err" ||
	fail "daemon down: want one line saying so, got: $(cat "$WORK/down.err")"
[ ! -s "$WORK/down" ] || fail "daemon down: something on stdout"

# ---- basic auth against a daemon with a web config (users only): right and wrong credentials
# bcrypt (cost 10) of "s3cret" for alice, as in t_web.sh
cat >"$WORK/web.yaml" <<'YAML'
basic_auth_users:
  alice: $2b$10$iiHGBtK/.5RIA/AUb/i4EuFzd8gywGyf.dTDPNdiW2/bZBgY13Miy
YAML
PORT=$(free_port)
"$EXPORTER" --web.listen-address=127.0.0.1:$PORT --web.config.file="$WORK/web.yaml" >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")" = 401 ] && break
	sleep 0.1
done
echo 'alice:s3cret' >"$WORK/alice"
"$EXPORTER" top --once -d 1 --basic-auth-file="$WORK/alice" --web.listen-address=127.0.0.1:$PORT \
	>"$WORK/auth" 2>"$WORK/auth.err" || fail "top with alice's credentials: $(cat "$WORK/auth.err")"
awk -v n="$HI" '$1 == n { f = 1 } END { exit !f }' "$WORK/auth" || fail "top with credentials does not list $HI"
echo 'alice:wrong' >"$WORK/wrong"
"$EXPORTER" top --once --basic-auth-file="$WORK/wrong" --web.listen-address=127.0.0.1:$PORT \
	>/dev/null 2>"$WORK/err"
rc=$?
note "basic auth: alice's credentials list $HI; wrong ones: exit $rc: $(cat "$WORK/err")"
[ $rc = 1 ] && [ "$(wc -l <"$WORK/err")" = 1 ] && grep -q 'wrong credentials (HTTP 401' "$WORK/err" ||
	fail "wrong credentials: want one line and exit 1"
stop_daemon

# ---- a server that refuses the credentials, and a daemon of another version (socat stands in)
fake() {	# fake RESPONSE-FILE: serves it to every connection; sets FAKE_PORT
	FAKE_PORT=$(free_port)
	socat TCP-LISTEN:$FAKE_PORT,bind=127.0.0.1,reuseaddr,fork SYSTEM:"cat '$1'" 2>/dev/null &
	at_exit "kill $! 2>/dev/null"
	for _ in $(seq 50); do ss -tlnH "( sport = :$FAKE_PORT )" | grep -q . && break; sleep 0.1; done
}
printf 'HTTP/1.0 401 Unauthorized\r\nContent-Length: 0\r\n\r\n' >"$WORK/r401"
printf 'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"version":"0.0.1-other","kernel":"x"}\n' >"$WORK/rver"
echo 'someone:wrong' >"$WORK/cred"
for case in "r401:wrong credentials (HTTP 401" "rver:is version 0.0.1-other"; do
	fake "$WORK/${case%%:*}"
	"$EXPORTER" top --once --basic-auth-file="$WORK/cred" --web.listen-address=127.0.0.1:$FAKE_PORT \
		>/dev/null 2>"$WORK/err"
	rc=$?
	note "${case%%:*}: exit $rc: $(cat "$WORK/err")"
	[ $rc = 1 ] && [ "$(wc -l <"$WORK/err")" = 1 ] && grep -qF "${case#*:}" "$WORK/err" ||
		fail "${case%%:*}: want one line with \"${case#*:}\" and exit 1"
done
exit 0
