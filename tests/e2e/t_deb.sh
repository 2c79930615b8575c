#!/bin/bash
# t_deb.sh: make deb, apt-get install it into a Debian root booted by a real systemd: enabled, active, as fpu_exporter, /metrics valid, reload; purge leaves nothing (unit, user, conffiles, BPF programs).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sysroot.sh"

require_root
command -v promtool >/dev/null || skip_or_fail "promtool (package prometheus) is not installed"
command -v bpftool >/dev/null && command -v jq >/dev/null || skip_or_fail "bpftool and jq are needed"
make -s -C "$ROOT" deb >"$WORK/deb.log" 2>&1 || { tail -30 "$WORK/deb.log"; fail "make deb"; }
grep -q '^[EW]: ' "$WORK/deb.log" && fail "lintian: $(grep '^[EW]: ' "$WORK/deb.log")"
debs=("$BUILD"/deb/fpu-exporter_*_amd64.deb)
[ ${#debs[@]} = 1 ] && [ -f "${debs[0]}" ] || fail "make deb made ${debs[*]}"
DEB=${debs[0]}
note "make deb: $(basename "$DEB"), $(stat -c %s "$DEB") bytes, lintian: no errors or warnings"

R=$WORK/root
mkdir "$R"
sysroot_create "$R" adduser man-db >"$WORK/create.log" 2>&1 || { tail -20 "$WORK/create.log"; fail "could not build the Debian root"; }
at_exit "sysroot_destroy '$R'"
cp "$DEB" "$R/root/" || fail "copy the .deb into the root"
# The operator's flags, set before the install (the package keeps an existing conffile with confold).
PORT=$(free_port)
mkdir -p "$R/etc/default"
printf 'ARGS="--web.listen-address=127.0.0.1:%s"\n' "$PORT" >"$R/etc/default/fpu_exporter"

sysroot_boot "$R" || fail "systemd did not boot"
at_exit "sysroot_shutdown"
inside() { sysroot_run "$@"; }
prop() { inside systemctl show -p "$1" --value fpu_exporter; }
journal() { inside journalctl -u fpu_exporter --no-pager; }

inside env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confold \
	"/root/$(basename "$DEB")" >"$WORK/apt.log" 2>&1 || { tail -30 "$WORK/apt.log"; fail "apt-get install ./$(basename "$DEB")"; }
[ "$(inside dpkg-query -W -f='${Status}' fpu-exporter)" = "install ok installed" ] || fail "not installed"
[ "$(inside systemctl is-enabled fpu_exporter)" = enabled ] || fail "unit not enabled: $(inside systemctl is-enabled fpu_exporter)"
for _ in $(seq 50); do
	[ "$(prop ActiveState)/$(prop SubState)" = active/running ] && break
	sleep 0.2
done
[ "$(prop ActiveState)/$(prop SubState)" = active/running ] || fail "state $(prop ActiveState)/$(prop SubState): $(journal | tail -20)"
[ "$(prop FragmentPath)" = /lib/systemd/system/fpu_exporter.service ] || fail "unit at $(prop FragmentPath)"
# (verify runs man for the unit's Documentation=man:fpu_exporter(1))
out=$(inside env MANWIDTH=80 man --warnings fpu_exporter 2>&1 >"$WORK/man.txt") || fail "man fpu_exporter: $out"
[ -z "$out" ] || fail "man fpu_exporter warns: $out"
grep -q '^NAME' "$WORK/man.txt" || fail "man fpu_exporter printed no page"
out=$(inside systemd-analyze verify /lib/systemd/system/fpu_exporter.service 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify complained: $out"
inside getent passwd fpu_exporter >/dev/null || fail "no fpu_exporter user"
pid=$(prop MainPID)
journal | grep -q 'running as user fpu_exporter' || fail "the daemon did not switch to fpu_exporter: $(journal | tail -10)"
[ "$(inside stat -c %U "/proc/$pid")" = fpu_exporter ] || fail "the daemon runs as $(inside stat -c %U "/proc/$pid")"
cmd=$(inside cat "/proc/$pid/cmdline" | tr '\0' ' ')
[ "$cmd" = "/usr/bin/fpu_exporter --config.file=/etc/fpu_exporter/fpu_exporter.yaml --web.listen-address=127.0.0.1:$PORT " ] ||
	fail "command line: $cmd"
note "apt-get install: enabled, active (running) as fpu_exporter, systemd-analyze verify and man fpu_exporter clean: $cmd"

curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/m" || fail "/metrics does not answer"
out=$(promtool check metrics <"$WORK/m" 2>&1) || fail "promtool check metrics: $out"
attached=$(grep -c '^fpu_exporter_probe_attached{.*} 1$' "$WORK/m")
[ "$attached" -ge 10 ] || fail "only $attached probes attached"
grep '^fpu_exporter_probe_attached{.*} 0$' "$WORK/m" && fail "probes not attached under the packaged unit"
note "/metrics: $(grep -vc '^#' "$WORK/m") samples, promtool clean, $attached probes attached"

# The host's view of the BPF programs this instance holds (by its host pid).
hostpid=$(cat "$SYSROOT_CGROUP/payload/system.slice/fpu_exporter.service/cgroup.procs" 2>/dev/null | head -1)
[ -n "$hostpid" ] || fail "no host pid for the service"
# (fdinfo of its program and link fds: Debian's bpftool has no pid iterator, its "pids" are null)
ids=$(cat "/proc/$hostpid"/fdinfo/* 2>/dev/null | awk '$1 == "prog_id:" { print $2 }' | sort -un | tr '\n' ' ')
[ "$(wc -w <<<"$ids")" -ge "$attached" ] || fail "the daemon (host pid $hostpid) holds $(wc -w <<<"$ids") BPF programs"
bpftool -j prog show >"$WORK/progs.json" || fail "bpftool prog show"
shown=$(jq -r '.[].id' "$WORK/progs.json" | grep -cFxf <(tr ' ' '\n' <<<"$ids" | grep .))
[ "$shown" = "$(wc -w <<<"$ids")" ] || fail "bpftool shows $shown of the daemon's $(wc -w <<<"$ids") programs"

inside systemctl reload fpu_exporter || fail "systemctl reload: $(journal | tail -10)"
journal | grep -q 'configuration reloaded' || fail "reload not seen in the journal"
[ "$(prop MainPID)" = "$pid" ] && [ "$(prop ActiveState)" = active ] || fail "reload restarted or stopped the daemon"
curl -sf "http://127.0.0.1:$PORT/metrics" >/dev/null || fail "/metrics does not answer after reload"
note "reload: same process, configuration reloaded (as fpu_exporter), still serving; $(wc -w <<<"$ids") BPF programs held"

inside env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q fpu-exporter >"$WORK/purge.log" 2>&1 ||
	{ tail -30 "$WORK/purge.log"; fail "apt-get purge"; }
[ -z "$(inside dpkg-query -W -f='${Status}' fpu-exporter 2>/dev/null)" ] || fail "dpkg still knows the package"
[ "$(prop LoadState)" = not-found ] || fail "unit still loaded: $(prop LoadState)/$(prop ActiveState)"
for f in /lib/systemd/system/fpu_exporter.service /etc/systemd/system/multi-user.target.wants/fpu_exporter.service \
	/usr/bin/fpu_exporter /etc/fpu_exporter /etc/default/fpu_exporter; do
	[ -e "$R$f" ] || [ -L "$R$f" ] && fail "purge left $f"
done
inside getent passwd fpu_exporter && fail "purge left the user"
inside getent group fpu_exporter && fail "purge left the group"
for _ in $(seq 50); do kill -0 "$hostpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$hostpid" 2>/dev/null && fail "the daemon (host pid $hostpid) still runs"
bpftool -j prog show >"$WORK/progs.after" || fail "bpftool prog show"
left=$(jq -r '.[].id' "$WORK/progs.after" | grep -Fxf <(tr ' ' '\n' <<<"$ids" | grep .) | tr '\n' ' ')
[ -z "$left" ] || fail "BPF programs left attached after purge: $left"
note "purge: package, unit, enablement, conffiles, user and group gone; none of the $(wc -w <<<"$ids") programs left"
