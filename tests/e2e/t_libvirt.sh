#!/bin/bash
# t_libvirt.sh: the production layout: systemd, machined and libvirt in a booted Debian root, the exporter's unit in it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sysroot.sh"
. "$(dirname "$0")/libvirt.sh"

require_kvm
V2=$(cgroup_v2_root)
ctl_before=$(cat "$V2/cgroup.subtree_control")
# libvirt_setup may have to pass a v2 controller down to the root: give it back after
at_exit "for c in \$(cat '$V2/cgroup.subtree_control'); do grep -qw \"\$c\" <<<'$ctl_before' || echo \"-\$c\" >'$V2/cgroup.subtree_control'; done"
R=$WORK/root
mkdir "$R"
# shellcheck disable=SC2046
sysroot_create "$R" $(libvirt_packages) >"$WORK/create.log" 2>&1 ||
	{ tail -20 "$WORK/create.log"; fail "could not build the Debian root with libvirt"; }
at_exit "sysroot_destroy '$R'"
make -s -C "$ROOT" install DESTDIR="$R" PREFIX=/usr/local >"$WORK/install.log" 2>&1 ||
	{ cat "$WORK/install.log"; fail "make install"; }
PORT=$(free_port)
sed -i "s|listen_address: \":9659\"|listen_address: \"127.0.0.1:$PORT\"|" "$R/etc/fpu_exporter/fpu_exporter.yaml"
sysroot_boot "$R" || fail "systemd did not boot"
at_exit "sysroot_shutdown"
inside() { sysroot_run "$@"; }
libvirt_setup || fail "libvirt did not come up"

# the exporter first, so that it sees every reload of the domain
inside systemctl enable --now fpu_exporter || fail "the exporter's unit did not start"
libvirt_start_domain prod 2 || fail "virsh create failed"
at_exit "libvirt_destroy prod"
inside machinectl list --no-legend | grep -q '^qemu-[0-9]*-prod *vm *libvirt-qemu' ||
	fail "machined does not list the domain: $(inside machinectl list --no-legend)"
sleep 2
libvirt_suspend prod || fail "virsh suspend failed"
libvirt_fpu_reload prod >"$WORK/virsh" || fail "virsh domstats failed"
inside curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/m" || fail "/metrics does not answer inside"

while read -r line; do
	eval "$line"	# vcpu=N fpu_reload=M
	got=$(metric_sum "$WORK/m" fpu_guest_reloads_total 'domain="prod"' "vcpu=\"$vcpu\"")
	note "vcpu $vcpu: virsh domstats fpu_reload=$fpu_reload, exporter $got"
	[ "$got" = "$fpu_reload" ] || fail "vcpu $vcpu: exporter $got, libvirt $fpu_reload; $(grep "^fpu_guest\|map_entries" "$WORK/m"); $(inside journalctl -u fpu_exporter --no-pager | tail -5)"
done <"$WORK/virsh"
[ "$(wc -l <"$WORK/virsh")" = 2 ] || fail "expected 2 vCPUs from virsh: $(cat "$WORK/virsh")"
info=$(grep '^fpu_guest_info{domain="prod"' "$WORK/m")
grep -q 'vmm="qemu"' <<<"$info" || fail "fpu_guest_info: $info"
grep -q 'cgroup="/machine.slice/machine-qemu\\\\x2d[0-9]*\\\\x2dprod.scope/libvirt"' <<<"$info" ||
	fail "the domain is not in libvirt's machine scope: $info"
grep -q 'uuid="[0-9a-f-]\{36\}"' <<<"$info" || fail "no uuid from machined: $info"
inside curl -sf "http://127.0.0.1:$PORT/status" | jq -e \
	'any(.guests[]; .domain == "prod" and .name_source == "machined")' >/dev/null ||
	fail "/status: prod not named by machined"
note "domain=\"prod\" named by machined, in its libvirt scope, per-vCPU fpu_reload equal to virsh domstats"
