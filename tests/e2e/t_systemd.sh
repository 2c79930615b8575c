#!/bin/bash
# t_systemd.sh: make install into a Debian root booted by a real systemd; the unit as shipped: notify, reload, stop, watchdog.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sysroot.sh"

require_root
R=$WORK/root
mkdir "$R"
sysroot_create "$R" >"$WORK/create.log" 2>&1 || { tail -20 "$WORK/create.log"; fail "could not build the Debian root"; }
at_exit "sysroot_destroy '$R'"
make -s -C "$ROOT" install DESTDIR="$R" PREFIX=/usr/local >"$WORK/install.log" 2>&1 ||
	{ cat "$WORK/install.log"; fail "make install"; }
for f in /usr/local/bin/fpu_exporter /etc/systemd/system/fpu_exporter.service \
	/etc/fpu_exporter/fpu_exporter.yaml /usr/local/share/doc/fpu_exporter/README.md; do
	[ -e "$R$f" ] || fail "make install did not install $f"
done
PORT=$(free_port)
sed -i "s|listen_address: \":9659\"|listen_address: \"127.0.0.1:$PORT\"|" "$R/etc/fpu_exporter/fpu_exporter.yaml"
grep -q "127.0.0.1:$PORT" "$R/etc/fpu_exporter/fpu_exporter.yaml" || fail "could not set the port"

sysroot_boot "$R" || fail "systemd did not boot"
at_exit "sysroot_shutdown"
inside() { sysroot_run "$@"; }
prop() { inside systemctl show -p "$1" --value fpu_exporter; }

out=$(inside systemd-analyze verify /etc/systemd/system/fpu_exporter.service 2>&1) ||
	fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify complained: $out"
note "systemd-analyze verify: clean"

inside systemctl enable --now fpu_exporter || fail "systemctl enable --now: $(inside journalctl -u fpu_exporter --no-pager | tail -20)"
[ "$(prop Type)" = notify ] || fail "Type is $(prop Type)"
[ "$(prop ActiveState)/$(prop SubState)" = active/running ] ||
	fail "state $(prop ActiveState)/$(prop SubState): $(inside journalctl -u fpu_exporter --no-pager | tail -20)"
inside curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/m" || fail "/metrics does not answer inside"
attached=$(grep -c '^fpu_exporter_probe_attached{.*} 1$' "$WORK/m")
grep '^fpu_exporter_probe_attached{.*} 0$' "$WORK/m" && fail "probes not attached under the unit's hardening"
[ "$attached" -ge 10 ] || fail "only $attached probes attached"
pid=$(prop MainPID)
caps=$(inside grep -E '^Cap(Eff|Prm|Bnd):' "/proc/$pid/status" | tr -s '\t ' ' ' | tr '\n' ' ')
note "active (running) through Type=notify, $attached probes attached; $caps"
for c in CapEff CapPrm CapBnd; do
	grep -q "$c: 0000000000000000" <<<"$caps" || fail "$c not empty under systemd: $caps"
done

inside systemctl reload fpu_exporter || fail "systemctl reload"
inside journalctl -u fpu_exporter --no-pager | grep -q 'configuration reloaded' || fail "reload not seen in the journal"
[ "$(prop MainPID)" = "$pid" ] || fail "reload restarted the daemon"
[ "$(prop ActiveState)" = active ] || fail "not active after reload"
note "reload: same process, configuration reloaded"

# A daemon that stops answering its watchdog is restarted (WatchdogSec shortened by a drop-in).
inside mkdir -p /etc/systemd/system/fpu_exporter.service.d
printf '[Service]\nWatchdogSec=2s\n' | inside tee /etc/systemd/system/fpu_exporter.service.d/watchdog.conf >/dev/null
inside systemctl daemon-reload
inside systemctl restart fpu_exporter || fail "restart"
pid=$(prop MainPID)
restarts=$(prop NRestarts)
inside kill -STOP "$pid"
for _ in $(seq 60); do
	new=$(prop MainPID)
	[ "$new" != "$pid" ] && [ "$new" != 0 ] && [ "$(prop ActiveState)" = active ] && break
	sleep 0.5
done
[ "$new" != "$pid" ] && [ "$new" != 0 ] || fail "a stopped daemon was not restarted by the watchdog"
[ "$(prop NRestarts)" -gt "$restarts" ] || fail "NRestarts did not grow"
inside journalctl -u fpu_exporter --no-pager | grep -qi 'watchdog timeout' || fail "no watchdog timeout in the journal"
note "watchdog: a SIGSTOPped daemon was killed and restarted (pid $pid -> $new)"

inside systemctl stop fpu_exporter || fail "systemctl stop"
[ "$(prop ActiveState)" = inactive ] || fail "not inactive after stop: $(prop ActiveState)"
inside journalctl -u fpu_exporter --no-pager | grep -q 'shutting down' || fail "no clean shutdown in the journal"

# make uninstall removes what install put there, and leaves the configuration
make -s -C "$ROOT" uninstall DESTDIR="$R" PREFIX=/usr/local >/dev/null || fail "make uninstall"
[ -e "$R/usr/local/bin/fpu_exporter" ] && fail "uninstall left the binary"
[ -e "$R/etc/fpu_exporter/fpu_exporter.yaml" ] || fail "uninstall removed the configuration"
note "stop, uninstall: clean"
