# libvirt.sh: owns the e2e libvirt setup inside the booted Debian root of sysroot.sh: its packages, libvirtd/virtlogd/machined as shipped, QEMU run as root, and one transient KVM domain started, located (pids), paused, read (fpu_reload via domstats) and destroyed.

# Sourced by tests after sysroot.sh (sourced here when missing); defines
# functions only. Needs a root booted by sysroot_boot from a sysroot_create'd
# DIR that got "$(libvirt_packages)" as its EXTRA_PACKAGES:
#
#   sysroot_create DIR $(libvirt_packages) && sysroot_boot DIR && libvirt_setup
#
#   libvirt_packages                 the EXTRA_PACKAGES for sysroot_create, one a line
#   libvirt_setup                    qemu.conf, services, cgroup controller; waits for virsh
#   libvirt_start_domain NAME VCPUS  "virsh create"s a 64 MiB diskless KVM domain
#   libvirt_qemu_pid NAME            its QEMU pid inside the root, then on the host
#   libvirt_suspend NAME             "virsh suspend"; waits until paused
#   libvirt_fpu_reload NAME          "vcpu=<n> fpu_reload=<v>" per vCPU (virsh domstats --vcpu)
#   libvirt_destroy NAME             "virsh destroy"; waits until machined forgets it
#
# NAME: letters, digits and single dashes (so that libvirt's machine name is
# exactly qemu-<id>-NAME). Every wait is bounded by $LIBVIRT_TIMEOUT seconds
# (default 60). Errors go to stderr, prefixed "libvirt:".
#
# What it takes here (Debian 12: libvirt 9.0.0, QEMU 7.2, systemd 252):
# - libpam-systemd: polkitd (needed by libvirt-daemon-system) depends on the
#   virtual default-logind | logind, which debootstrap cannot resolve.
# - user/group root: /dev/kvm is 0600 root inside, so QEMU as libvirt-qemu
#   fails ("Could not access KVM kernel module: Permission denied").
# - namespaces = []: no private mount namespace (/dev copy) for QEMU.
# - security_driver = "none": no AppArmor/SELinux inside the container.
# - a cgroup v2 controller visible inside: libvirt ignores a cgroup2 mount
#   whose cgroup.controllers is empty (a hybrid host's unified tree) and then
#   silently skips cgroups AND machined (QEMU stays in libvirtd.service). On
#   such a host libvirt_setup enables a v2-only controller (hugetlb) from the
#   host's cgroup2 root down to $SYSROOT_CGROUP; it stays enabled at the root.
# - libvirt-guests.service masked: it would try a 300 s guest shutdown at
#   power-off (TimeoutStopSec=0).
# With no cpu/cpuset controller in v2, libvirt makes no per-vCPU cgroups: the
# QEMU process and all its threads ("CPU <n>/KVM" included) sit in
#   /machine.slice/machine-qemu\x2d<id>\x2d<NAME>.scope/libvirt
# (inside the root's cgroup namespace; on the host under $SYSROOT_CGROUP/payload).

if ! declare -F sysroot_run >/dev/null; then
	# shellcheck source=sysroot.sh
	. "$(dirname "${BASH_SOURCE[0]}")/sysroot.sh"
fi

_libvirt_err() { echo "libvirt: $*" >&2; }

# _libvirt_in CMD...: CMD inside the booted root, stdin from /dev/null.
_libvirt_in() { sysroot_run "$@" </dev/null; }

# _libvirt_virsh ARGS...: virsh against the system QEMU driver inside the root.
_libvirt_virsh() { _libvirt_in virsh -q -c qemu:///system "$@"; }

# _libvirt_check_name NAME: NAME is usable as is in XML, machine and unit names.
_libvirt_check_name() {
	if [[ ! ${1:-} =~ ^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$ ]] || [ ${#1} -gt 40 ]; then
		_libvirt_err "bad domain name '${1:-}' (letters, digits, single dashes; at most 40)"
		return 2
	fi
}

# _libvirt_booted: a sysroot is booted in this shell.
_libvirt_booted() {
	_sysroot_alive && return 0
	_libvirt_err "no sysroot is booted (sysroot_boot DIR first)"
	return 1
}

# _libvirt_journal UNIT...: the last lines of their journal inside, for errors.
_libvirt_journal() {
	local u args=()
	for u in "$@"; do args+=(-u "$u"); done
	_libvirt_in journalctl --no-pager -q -n 15 "${args[@]}" 2>&1 | sed 's/^/    /' >&2
}

# _libvirt_domstate NAME: its state word (running, paused, shut off...), or nothing.
_libvirt_domstate() { _libvirt_virsh domstate "$1" 2>/dev/null | sed -n '1{s/ *$//;p}'; }

# _libvirt_machine NAME: the machine name machined has for the running domain
# NAME (qemu-<id>-NAME); fails when libvirt has no id for it.
_libvirt_machine() {
	local id
	id=$(_libvirt_virsh domid "$1" 2>/dev/null | sed -n 1p)
	[[ $id =~ ^[0-9]+$ ]] || return 1
	echo "qemu-$id-$1"
}

# libvirt_packages: the EXTRA_PACKAGES for sysroot_create, one a line
# (debootstrap installs Depends only, i.e. no Recommends).
libvirt_packages() {
	printf '%s\n' systemd-container libvirt-daemon-system libvirt-clients qemu-system-x86 libpam-systemd bpftool
}

# _libvirt_cgroup_controllers: makes sure the root sees at least one cgroup v2
# controller in /sys/fs/cgroup/cgroup.controllers (see the header), enabling
# the host root's v2 controllers down to $SYSROOT_CGROUP when it sees none.
_libvirt_cgroup_controllers() {
	local v2 have c d rel part ctrls=()
	have=$(_libvirt_in cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)
	[ -n "$have" ] && return 0
	v2=$(_sysroot_cgroup2_root) || { _libvirt_err "no cgroup v2 hierarchy on the host"; return 1; }
	case $SYSROOT_CGROUP in
	"$v2"/*) rel=${SYSROOT_CGROUP#"$v2"/} ;;
	*)
		_libvirt_err "SYSROOT_CGROUP $SYSROOT_CGROUP is not under $v2"
		return 1
		;;
	esac
	read -ra ctrls <"$v2/cgroup.controllers" 2>/dev/null || :
	for c in "${ctrls[@]}"; do
		# Each ancestor must pass c down; $SYSROOT_CGROUP itself holds no process.
		d=$v2
		echo "+$c" >"$d/cgroup.subtree_control" 2>/dev/null || continue
		for part in ${rel//\// }; do
			d=$d/$part
			echo "+$c" >"$d/cgroup.subtree_control" 2>/dev/null || break
		done
	done
	have=$(_libvirt_in cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)
	if [ -z "$have" ]; then
		_libvirt_err "the root sees no cgroup v2 controller (host $v2 offers '$(cat "$v2/cgroup.controllers")'):" \
			"libvirt would neither use cgroups nor register domains with systemd-machined"
		return 1
	fi
	return 0
}

# _libvirt_qemu_conf: sets our keys in /etc/libvirt/qemu.conf inside (idempotent).
_libvirt_qemu_conf() {
	# shellcheck disable=SC2016
	_libvirt_in sh -ec '
		f=/etc/libvirt/qemu.conf
		sed -i -E "/^[[:space:]]*(user|group|namespaces|security_driver)[[:space:]]*=/d; /^# libvirt.sh \(e2e\)/d" "$f"
		cat >>"$f" <<-EOF
		# libvirt.sh (e2e): QEMU as root (/dev/kvm is root-only), no mount namespace, no MAC driver
		user = "root"
		group = "root"
		namespaces = [ ]
		security_driver = "none"
		EOF'
}

# libvirt_setup: run after sysroot_boot: qemu.conf (QEMU as root, namespaces
# and security driver off), a v2 cgroup controller for libvirt, libvirtd (or
# virtqemud) restarted, virtlogd and machined up, libvirt-guests masked; waits
# until "virsh list" answers.
libvirt_setup() {
	local deadline daemon units err
	_libvirt_booted || return 1
	if ! _libvirt_in test -x /usr/sbin/libvirtd -a -x /usr/bin/virsh -a -x /usr/bin/qemu-system-x86_64 -a -x /usr/bin/machinectl; then
		_libvirt_err "libvirtd, virsh, qemu-system-x86_64 or machinectl missing in $SYSROOT_DIR: sysroot_create it with \$(libvirt_packages)"
		return 1
	fi
	if ! _libvirt_in test -c /dev/kvm -a -r /dev/kvm -a -w /dev/kvm; then
		_libvirt_err "/dev/kvm is not usable inside the root"
		return 1
	fi
	_libvirt_cgroup_controllers || return 1
	_libvirt_qemu_conf || { _libvirt_err "could not write /etc/libvirt/qemu.conf"; return 1; }
	# Monolithic libvirtd is what Debian 12 enables; the modular virtqemud if that is all there is.
	if _libvirt_in systemctl cat libvirtd.service >/dev/null 2>&1; then
		daemon=libvirtd
	elif _libvirt_in systemctl cat virtqemud.service >/dev/null 2>&1; then
		daemon=virtqemud
	else
		_libvirt_err "neither libvirtd.service nor virtqemud.service is installed"
		return 1
	fi
	units="$daemon.socket $daemon-ro.socket $daemon-admin.socket virtlogd.socket virtlogd-admin.socket"
	# Nothing here may reach the host's (shared) network: no libvirt network autostarts.
	_libvirt_in sh -c 'rm -f /etc/libvirt/qemu/networks/autostart/*.xml' || :
	# shellcheck disable=SC2086
	if ! err=$(_libvirt_in sh -ec "
		systemctl stop libvirt-guests.service || :
		systemctl mask -q libvirt-guests.service
		systemctl enable -q $units $daemon.service
		systemctl start $units systemd-machined.service
		systemctl restart $daemon.service" 2>&1); then
		_libvirt_err "starting $daemon, virtlogd, systemd-machined failed: $err"
		_libvirt_journal "$daemon.service" virtlogd.service systemd-machined.service
		return 1
	fi
	deadline=$((SECONDS + ${LIBVIRT_TIMEOUT:-60}))
	while :; do
		err=$(_libvirt_in timeout 10 virsh -q -c qemu:///system list --all 2>&1) && return 0
		[ "$SECONDS" -lt "$deadline" ] || break
		sleep 0.5
	done
	_libvirt_err "virsh list does not work after ${LIBVIRT_TIMEOUT:-60}s: $err"
	_libvirt_journal "$daemon.service"
	return 1
}

# _libvirt_xml NAME VCPUS: a minimal KVM domain: SeaBIOS, no disk, no NIC,
# no serial/console/USB/balloon, 64 MiB. It finds nothing to boot and idles,
# its vCPUs in KVM_RUN. Default CPU model: -cpu host aborts under this
# nested KVM (MSR 0x10a).
_libvirt_xml() {
	cat <<EOF
<domain type='kvm'>
  <name>$1</name>
  <memory unit='MiB'>64</memory>
  <vcpu placement='static'>$2</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}

# libvirt_start_domain NAME VCPUS: writes /run/libvirt-e2e/NAME.xml inside,
# "virsh create"s it and waits until it runs and machined lists it as a vm
# (qemu-<id>-NAME). Prints nothing on success.
libvirt_start_domain() {
	local name=${1:-} vcpus=${2:-} xml=/run/libvirt-e2e/${1:-}.xml deadline err st="" m="" class=""
	if [ $# -ne 2 ]; then
		_libvirt_err "usage: libvirt_start_domain NAME VCPUS"
		return 2
	fi
	_libvirt_check_name "$name" || return 2
	if [[ ! $vcpus =~ ^[1-9][0-9]*$ ]]; then
		_libvirt_err "VCPUS must be a positive integer, got '$vcpus'"
		return 2
	fi
	_libvirt_booted || return 1
	# shellcheck disable=SC2016
	if ! _libvirt_xml "$name" "$vcpus" | sysroot_run sh -c 'mkdir -p /run/libvirt-e2e && cat >"$1"' sh "$xml"; then
		_libvirt_err "could not write $xml inside the root"
		return 1
	fi
	if ! err=$(_libvirt_virsh create "$xml" 2>&1); then
		_libvirt_err "virsh create $xml failed: $err"
		_libvirt_in sh -c "tail -n 5 /var/log/libvirt/qemu/$name.log" 2>/dev/null | sed 's/^/    /' >&2
		return 1
	fi
	deadline=$((SECONDS + ${LIBVIRT_TIMEOUT:-60}))
	while :; do
		st=$(_libvirt_domstate "$name")
		if [ "$st" = running ] && m=$(_libvirt_machine "$name"); then
			class=$(_libvirt_in machinectl show "$m" -p Class --value 2>/dev/null)
			[ "$class" = vm ] && return 0
		fi
		[ "$SECONDS" -lt "$deadline" ] || break
		sleep 0.25
	done
	_libvirt_err "domain $name not running and listed by machined within ${LIBVIRT_TIMEOUT:-60}s" \
		"(state '${st:-none}', machine '${m:-?}' class '${class:-not listed}'); machinectl list:"
	_libvirt_in machinectl list --no-pager 2>&1 | sed 's/^/    /' >&2
	return 1
}

# libvirt_qemu_pid NAME: the QEMU pid of NAME as seen inside the root (its PID
# namespace), then on a second line as seen from the host (the process in
# $SYSROOT_CGROUP whose NSpid ends with the inner pid, in the root's PID namespace).
libvirt_qemu_pid() {
	local name=${1:-} pid cg pidns p hostpid="" procs
	if [ $# -ne 1 ]; then
		_libvirt_err "usage: libvirt_qemu_pid NAME"
		return 2
	fi
	_libvirt_check_name "$name" || return 2
	_libvirt_booted || return 1
	pid=$(_libvirt_in cat "/run/libvirt/qemu/$name.pid" 2>/dev/null)
	if [[ ! $pid =~ ^[0-9]+$ ]] || ! _libvirt_in test -d "/proc/$pid"; then
		_libvirt_err "no running QEMU for domain $name (/run/libvirt/qemu/$name.pid: '${pid:-missing}')"
		return 1
	fi
	pidns=$(readlink "/proc/$SYSROOT_PID/ns/pid") || { _libvirt_err "cannot read the root's PID namespace"; return 1; }
	# Its cgroup inside is relative to the root's cgroup namespace, $SYSROOT_CGROUP/payload on the host.
	cg=$(_libvirt_in sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>/dev/null)
	procs=$SYSROOT_CGROUP/payload${cg%/}/cgroup.procs
	for p in $(cat "$procs" 2>/dev/null) /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$(awk '$1 == "NSpid:" { print $NF }' "/proc/$p/status" 2>/dev/null)" = "$pid" ] || continue
		[ "$(readlink "/proc/$p/ns/pid" 2>/dev/null)" = "$pidns" ] || continue
		hostpid=$p
		break
	done
	if [ -z "$hostpid" ]; then
		_libvirt_err "QEMU pid $pid of $name (cgroup $cg) not found from the host"
		return 1
	fi
	printf '%s\n%s\n' "$pid" "$hostpid"
}

# libvirt_suspend NAME: "virsh suspend"s it and waits until it is paused.
libvirt_suspend() {
	local name=${1:-} err deadline st=""
	if [ $# -ne 1 ]; then
		_libvirt_err "usage: libvirt_suspend NAME"
		return 2
	fi
	_libvirt_check_name "$name" || return 2
	_libvirt_booted || return 1
	if ! err=$(_libvirt_virsh suspend "$name" 2>&1); then
		_libvirt_err "virsh suspend $name failed: $err"
		return 1
	fi
	deadline=$((SECONDS + ${LIBVIRT_TIMEOUT:-60}))
	while :; do
		st=$(_libvirt_domstate "$name")
		[ "$st" = paused ] && return 0
		[ "$SECONDS" -lt "$deadline" ] || break
		sleep 0.25
	done
	_libvirt_err "domain $name not paused within ${LIBVIRT_TIMEOUT:-60}s (state '${st:-none}')"
	return 1
}

# libvirt_fpu_reload NAME: "vcpu=<n> fpu_reload=<v>" per vCPU, n ascending,
# from "virsh domstats --vcpu" (libvirt >= 8.x reports QEMU's query-stats KVM
# counters there as vcpu.<n>.<stat>.sum / .cur / .max: here vcpu.<n>.fpu_reload.sum).
libvirt_fpu_reload() {
	local name=${1:-} out lines n
	if [ $# -ne 1 ]; then
		_libvirt_err "usage: libvirt_fpu_reload NAME"
		return 2
	fi
	_libvirt_check_name "$name" || return 2
	_libvirt_booted || return 1
	if ! out=$(_libvirt_virsh domstats --vcpu "$name" 2>&1); then
		_libvirt_err "virsh domstats --vcpu $name failed: $out"
		return 1
	fi
	lines=$(printf '%s\n' "$out" | sed -n -E 's/^[[:space:]]*vcpu\.([0-9]+)\.fpu_reload\.sum=([0-9]+)[[:space:]]*$/vcpu=\1 fpu_reload=\2/p' |
		sort -t= -k2,2n)
	n=$(printf '%s\n' "$out" | sed -n -E 's/^[[:space:]]*vcpu\.current=([0-9]+).*/\1/p')
	if [ -z "$lines" ]; then
		_libvirt_err "virsh domstats --vcpu $name has no vcpu.<n>.fpu_reload.sum" \
			"(this libvirt lacks query-stats; virsh qemu-monitor-command $name with query-stats gives it)"
		return 1
	fi
	if [ -n "$n" ] && [ "$(printf '%s\n' "$lines" | wc -l)" -ne "$n" ]; then
		_libvirt_err "domstats of $name: $n vCPUs but fpu_reload for $(printf '%s\n' "$lines" | wc -l)"
		return 1
	fi
	printf '%s\n' "$lines"
}

# libvirt_destroy NAME: "virsh destroy"s it (nothing to do when it is not
# running) and waits until machined no longer lists it.
libvirt_destroy() {
	local name=${1:-} m err deadline
	if [ $# -ne 1 ]; then
		_libvirt_err "usage: libvirt_destroy NAME"
		return 2
	fi
	_libvirt_check_name "$name" || return 2
	_libvirt_booted || return 1
	m=$(_libvirt_machine "$name") || m=""
	if [ -n "$(_libvirt_domstate "$name")" ] && ! err=$(_libvirt_virsh destroy "$name" 2>&1); then
		# It may have gone away by itself meanwhile.
		if [ -n "$(_libvirt_domstate "$name")" ]; then
			_libvirt_err "virsh destroy $name failed: $err"
			return 1
		fi
	fi
	_libvirt_in rm -f "/run/libvirt-e2e/$name.xml" || :
	[ -n "$m" ] || return 0
	deadline=$((SECONDS + ${LIBVIRT_TIMEOUT:-60}))
	while _libvirt_in machinectl show "$m" -p Name --value >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			_libvirt_err "machine $m still listed ${LIBVIRT_TIMEOUT:-60}s after destroying $name"
			return 1
		fi
		sleep 0.25
	done
	return 0
}
