#!/bin/bash
# t_machined.sh: VMs named by systemd-machined over sd-bus (a stand-in on a private bus): first in the chain, kept current.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dbus.sh"

require_kvm
command -v dbus-daemon >/dev/null || skip_or_fail "dbus-daemon is not installed"

# start_vmm TAG ARGS...: a held test VMM; sets VMM_PID and waits for its ready file.
start_vmm() {
	local tag=$1
	shift
	"$BUILD/tests/testvmm" --hold-threads --ready "$WORK/$tag" "$@" >/dev/null 2>&1 &
	VMM_PID=$!
	at_exit "kill $VMM_PID 2>/dev/null; wait $VMM_PID 2>/dev/null"
}
wait_vmm() {	# wait_vmm TAG: until its vCPUs are done
	for _ in $(seq 100); do [ -s "$WORK/$1" ] && return 0; sleep 0.1; done
	fail "test VMM $1 did not get ready"
}
reloads() {	# reloads TAG: KVM's fpu_reload summed over the VMM's vCPUs
	awk -F'fpu_reload=' '{ s += $2 } END { print s }' "$WORK/$1"
}

UUID=0d3c5a1e-8c1f-4a3b-9e2a-1b2c3d4e5f60
# registered before the daemon starts; its vCPUs run once the daemon is up
start_vmm early --runs 30,40 --go "$WORK/go"
early=$VMM_PID
mkdir "$WORK/bus"
dbus_start "$WORK/bus" || fail "dbus-daemon did not start"
at_exit "dbus_stop '$WORK/bus'"
fake_machined_start "$WORK/bus" "$BUILD/tests/fake_machined" \
	--machine "qemu-5-viamachined,vm,libvirt-qemu,$early,machine-qemu\\x2d5\\x2dviamachined.scope,$UUID" \
	--machine "box,container,systemd-nspawn,1,machine-box.scope," || fail "fake machined did not start"

start_daemon	# DBUS_SYSTEM_BUS_ADDRESS points it at the private bus
touch "$WORK/go"
wait_vmm early
scrape >"$WORK/m" || fail "scrape failed"
got=$(metric_sum "$WORK/m" fpu_guest_reloads_total 'domain="viamachined"')
[ "$got" = "$(reloads early)" ] || fail "domain viamachined: $got reloads, KVM says $(reloads early)"
[ "$(metric_sum "$WORK/m" fpu_guest_info 'domain="viamachined"' "uuid=\"$UUID\"" "pid=\"$early\"")" = 1 ] ||
	fail "fpu_guest_info lacks machined's name or uuid: $(grep fpu_guest_info "$WORK/m")"
scrape /status | jq -e '[.guests[] | select(.domain == "viamachined")][0].name_source == "machined"' >/dev/null ||
	fail "/status: viamachined not named by machined"
note "registered before start: domain=\"viamachined\" (libvirt's qemu-5-viamachined), uuid from machined"

# A VM registered while the daemon runs: -name until then, machined's name after MachineNew.
start_vmm late --runs 50 -name guest=byname
late=$VMM_PID
wait_vmm late
scrape >"$WORK/m"
[ "$(metric_sum "$WORK/m" fpu_guest_reloads_total 'domain="byname"')" = "$(reloads late)" ] ||
	fail "before registration the VM is not named by -name"
fake_machined_cmd "$WORK/bus" "add qemu-6-late,vm,libvirt-qemu,$late,machine-qemu\\x2d6\\x2dlate.scope," ||
	fail "add failed"
for _ in $(seq 50); do
	scrape >"$WORK/m"
	[ "$(metric_sum "$WORK/m" fpu_guest_reloads_total 'domain="late"')" = "$(reloads late)" ] && break
	sleep 0.1
done
[ "$(metric_sum "$WORK/m" fpu_guest_reloads_total 'domain="late"')" = "$(reloads late)" ] ||
	fail "MachineNew did not rename the VM: $(grep fpu_guest_info "$WORK/m")"
[ "$(metric_sum "$WORK/m" fpu_guest_reloads_total 'domain="byname"')" = absent ] ||
	fail "the old name is still exported"
note "registered later: \"byname\" (-name) became \"late\" on MachineNew; machined wins over -name"

# A hung machined: with 15 more VMs registered, it stops answering and a MachineNew comes; scrapes
# are served within a second (the bus is asked asynchronously) and the names known stay.
for i in $(seq 15); do
	fake_machined_cmd "$WORK/bus" "add qemu-$((10 + i))-extra$i,vm,libvirt-qemu,$((100000 + i)),machine-qemu\\x2d$((10 + i))\\x2dextra$i.scope," ||
		fail "add extra$i failed"
done
scrape >/dev/null
kill -STOP "$FAKE_MACHINED_PID"
at_exit "kill -CONT $FAKE_MACHINED_PID 2>/dev/null"
dbus-send --bus="$DBUS_SYSTEM_BUS_ADDRESS" --type=signal /org/freedesktop/machine1 \
	org.freedesktop.machine1.Manager.MachineNew string:stalled objpath:/org/freedesktop/machine1/machine/stalled ||
	fail "dbus-send"
for i in 1 2 3; do
	curl -sf --max-time 1 "http://127.0.0.1:$PORT/metrics" >"$WORK/m" || fail "scrape $i not served within a second while machined hangs"
done
[ "$(metric_sum "$WORK/m" fpu_guest_reloads_total 'domain="late"')" = "$(reloads late)" ] ||
	fail "a hung machined erased the names known: $(grep fpu_guest_info "$WORK/m")"
kill -CONT "$FAKE_MACHINED_PID"
note "machined hung with 16 VMs registered and a MachineNew pending: 3 scrapes within a second, names kept"
