# sysroot.sh: owns the e2e "booted Debian" sandbox: a cached debootstrap'd bookworm root, systemd booted in it as PID 1 of new PID/mount/cgroup/UTS/IPC namespaces, commands run inside it, and its teardown.

# Sourced by tests; defines functions only. Needs root, util-linux (unshare,
# nsenter, script), debootstrap (installed with apt-get when missing).
#
#   sysroot_create DIR [EXTRA_PACKAGES...]   debootstrap (cached) into DIR
#   sysroot_boot DIR                         boot systemd in DIR; exports SYSROOT_*
#   sysroot_run CMD...                       run CMD inside the booted root
#   sysroot_shutdown                         power off, kill leftovers, clean up
#   sysroot_destroy DIR                      unmount leftovers, remove DIR
#
# Environment knobs (all optional): SYSROOT_MIRROR (Debian mirror URL; by default
# the one in /etc/apt/sources.list*), SYSROOT_CACHE (default /var/cache/fpu_exporter),
# SYSROOT_BOOT_TIMEOUT (seconds, default 60), SYSROOT_RUN_TIMEOUT (seconds per
# sysroot_run, default 300, 0 = none).
#
# After sysroot_boot: SYSROOT_DIR (the root), SYSROOT_PID (host pid of its
# systemd), SYSROOT_LOG (console of the container: DIR.boot.log, i.e. a file next
# to DIR), SYSROOT_CGROUP (the host cgroup v2 directory holding everything).
# The container shares the host's network namespace: 127.0.0.1:PORT inside is
# 127.0.0.1:PORT on the host.

_sysroot_err() { echo "sysroot: $*" >&2; }

# _sysroot_packages: the base package list, one a line.
_sysroot_packages() {
	printf '%s\n' systemd systemd-sysv dbus libbpf1 libmicrohttpd12 libyaml-0-2 \
		libsystemd0 libcjson1 libcrypt1 zlib1g curl procps iproute2 ca-certificates
}

# _sysroot_mirror: the Debian mirror debootstrap should use (first non-security
# ".../debian" URL in /etc/apt/sources.list*), or $SYSROOT_MIRROR.
_sysroot_mirror() {
	local f url
	if [ -n "${SYSROOT_MIRROR:-}" ]; then
		echo "$SYSROOT_MIRROR"
		return 0
	fi
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		url=$(awk '
			/^[ \t]*#/ { next }
			$1 == "URIs:" { for (i = 2; i <= NF; i++) print $i; next }
			$1 == "deb" {
				i = 2
				if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
				if (i <= NF) print $i
			}' "$f" | grep -E '^https?://.*/debian/?$' | head -n 1)
		if [ -n "$url" ]; then
			echo "${url%/}"
			return 0
		fi
	done
	echo http://deb.debian.org/debian
}

# _sysroot_mounts_under DIR: mount points at or below DIR in this mount
# namespace, deepest first (mountinfo's octal escapes decoded).
_sysroot_mounts_under() {
	awk -v d="$1" '
		function unesc(s,   out, i, c) {
			out = ""
			for (i = 1; i <= length(s); i++) {
				c = substr(s, i, 1)
				if (c == "\\" && substr(s, i + 1, 3) ~ /^[0-7][0-7][0-7]$/) {
					out = out sprintf("%c", (substr(s, i + 1, 1) * 64) + (substr(s, i + 2, 1) * 8) + substr(s, i + 3, 1))
					i += 3
				} else out = out c
			}
			return out
		}
		{ m = unesc($5); if (m == d || index(m, d "/") == 1) print length(m) "\t" m }' /proc/self/mountinfo |
		sort -rn | cut -f2-
}

# _sysroot_umount_under DIR: lazily unmounts everything at or below DIR.
_sysroot_umount_under() {
	local m
	[ -n "${1:-}" ] || return 0
	for _ in 1 2 3 4 5; do
		m=$(_sysroot_mounts_under "$1")
		[ -n "$m" ] || return 0
		printf '%s\n' "$m" | while IFS= read -r m; do umount -l -- "$m" 2>/dev/null || :; done
	done
	_sysroot_err "could not unmount everything under $1:"
	_sysroot_mounts_under "$1" >&2
	return 1
}

# _sysroot_recipe: version of what _sysroot_configure does, part of the cache key.
_sysroot_recipe() { echo recipe-2; }

# _sysroot_configure ROOT: one-time tweaks of a fresh root (kept in the cache).
_sysroot_configure() {
	local r=$1 u
	# A volatile journal: each boot starts with an empty one. (Every boot of a
	# container shares the host kernel's boot id, so "journalctl -b" could not
	# tell the boots of a persistent journal apart.)
	mkdir -p "$r/etc/systemd/journald.conf.d" &&
		printf '[Journal]\nStorage=volatile\n' >"$r/etc/systemd/journald.conf.d/sysroot.conf" || return 1
	rm -rf "$r/var/log/journal"
	# A fixed machine id: an empty one means "first boot" (systemd-firstboot would prompt).
	od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$r/etc/machine-id" && echo >>"$r/etc/machine-id" || return 1
	echo sysroot >"$r/etc/hostname"
	grep -qs '^127.0.0.1' "$r/etc/hosts" || printf '127.0.0.1\tlocalhost sysroot\n::1\tlocalhost ip6-localhost ip6-loopback\n' >>"$r/etc/hosts"
	# Units that must not run here: they would touch the host (shared network,
	# shared root file system superblock) or the network, or wait for a console.
	for u in systemd-remount-fs.service console-getty.service getty@.service serial-getty@.service \
		apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
		systemd-networkd.service systemd-networkd-wait-online.service systemd-timesyncd.service; do
		ln -sfn /dev/null "$r/etc/systemd/system/$u" || return 1
	done
	chroot "$r" apt-get clean >/dev/null 2>&1 || true
	rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/log/*.log
	return 0
}

# sysroot_create DIR [EXTRA_PACKAGES...]: a minimal bookworm root in DIR (which
# must be absent or empty), from the cache tarball when there is one.
sysroot_create() {
	local dir=${1:-} cache=${SYSROOT_CACHE:-/var/cache/fpu_exporter} list key tarball mirror lockfd rc
	if [ -z "$dir" ]; then
		_sysroot_err "usage: sysroot_create DIR [EXTRA_PACKAGES...]"
		return 2
	fi
	shift
	if [ "$(id -u)" != 0 ]; then
		_sysroot_err "sysroot_create needs root"
		return 1
	fi
	if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
		_sysroot_err "$dir exists and is not empty"
		return 1
	fi
	list=$({ _sysroot_packages; [ $# -eq 0 ] || printf '%s\n' "$@"; } | grep -v '^$' | sort -u)
	# The key covers the package list and the recipe (bump _sysroot_recipe when _sysroot_configure changes).
	key=$(printf '%s bookworm minbase %s\n%s\n' "$(_sysroot_recipe)" "$(dpkg --print-architecture 2>/dev/null || uname -m)" "$list" |
		sha256sum | cut -c1-16)
	tarball=$cache/sysroot-bookworm-$key.tar.gz
	mkdir -p "$dir" "$cache" || { _sysroot_err "cannot create $dir or $cache"; return 1; }
	dir=$(cd "$dir" && pwd) || return 1

	# One builder at a time per cache; the others wait for its tarball.
	exec {lockfd}>"$cache/.sysroot.lock" || { _sysroot_err "cannot open $cache/.sysroot.lock"; return 1; }
	if ! flock -w 1800 "$lockfd"; then
		exec {lockfd}>&-
		_sysroot_err "timed out waiting for another sysroot_create to finish ($cache/.sysroot.lock)"
		return 1
	fi
	rc=0
	if [ ! -s "$tarball" ]; then
		if ! command -v debootstrap >/dev/null 2>&1; then
			echo "sysroot: installing debootstrap..."
			{ timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq debootstrap; } >/dev/null 2>&1 ||
				{ _sysroot_err "apt-get install debootstrap failed"; rc=1; }
		fi
		if [ $rc = 0 ]; then
			mirror=$(_sysroot_mirror)
			mkdir -p "$cache/debs"
			echo "sysroot: debootstrap bookworm into $dir from $mirror (takes a few minutes)..."
			if ! timeout 1800 debootstrap --variant=minbase --cache-dir="$cache/debs" \
				--include="$(printf '%s\n' "$list" | paste -sd,)" bookworm "$dir" "$mirror" >"$cache/debootstrap.log" 2>&1; then
				_sysroot_err "debootstrap failed (or took over 30 min); last lines of $cache/debootstrap.log:"
				tail -n 20 "$cache/debootstrap.log" >&2
				rc=1
			elif ! _sysroot_configure "$dir"; then
				_sysroot_err "configuring $dir failed"
				rc=1
			else
				echo "sysroot: caching the root as $tarball..."
				if ! timeout 600 tar -C "$dir" --numeric-owner --xattrs --xattrs-include='*' -czf "$tarball.tmp.$$" . ||
					! mv -f "$tarball.tmp.$$" "$tarball"; then
					_sysroot_err "could not write $tarball"
					rm -f "$tarball.tmp.$$"
					rc=1
				fi
			fi
			# Never leave a half-built root behind (debootstrap may have left /proc mounted in it).
			if [ $rc != 0 ] && _sysroot_umount_under "$dir"; then
				find "$dir" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} + 2>/dev/null
			fi
		fi
		exec {lockfd}>&-
		return $rc
	fi
	exec {lockfd}>&-
	echo "sysroot: unpacking cached $tarball into $dir..."
	if ! timeout 600 tar -C "$dir" --numeric-owner --xattrs --xattrs-include='*' -xpzf "$tarball"; then
		_sysroot_err "could not unpack $tarball into $dir"
		return 1
	fi
	return 0
}

# _sysroot_cgroup2_root: where the host's cgroup v2 hierarchy is mounted
# (/sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid one).
_sysroot_cgroup2_root() {
	awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' \
		/proc/self/mountinfo | awk 'NR == 1 || $0 == "/sys/fs/cgroup" { r = $0 } END { if (r == "") exit 1; print r }'
}

# _sysroot_q WORD: WORD single-quoted for sh.
_sysroot_q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# _sysroot_write_launcher FILE ROOT CGROUP STATE: the script that becomes the
# container's PID 1. It runs in three steps, each exec'ing the next:
#   host:  under script(1), whose pty becomes the container's /dev/console;
#          unshare new PID, mount, UTS and IPC namespaces (the network is shared);
#   pidns: PID 1 of the new PID namespace: records its host pid, joins the
#          container's cgroup, then unshares a cgroup namespace rooted there;
#   root:  mounts what systemd needs, pivot_root()s into ROOT, execs systemd.
_sysroot_write_launcher() {
	{
		echo "# generated by sysroot_boot (tests/e2e/sysroot.sh)"
		echo "R=$(_sysroot_q "$2") CG=$(_sysroot_q "$3") STATE=$(_sysroot_q "$4")"
		cat <<'LAUNCHER'
set -eu
step=${1:-}
case $step in
host)
	stty -onlcr -echo 2>/dev/null || :
	exec unshare --pid --fork --kill-child --mount --uts --ipc --propagation private -- sh "$0" pidns
	;;
pidns)
	# /proc is still the host's: /proc/self/stat opened by this shell gives its host pid.
	read -r hostpid rest </proc/self/stat
	echo $$ >"$CG/payload/cgroup.procs"
	echo "$hostpid" >"$STATE/pid.new"
	mv "$STATE/pid.new" "$STATE/pid"
	exec unshare --cgroup -- sh "$0" root
	;;
root)
	console=$(tty)
	# pivot_root needs the new root to be a mount point; mounts below go on top of this one.
	mount --bind "$R" "$R"
	mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
	# Read-only kernel tunables: the host's sysctls (network included) are not the container's to change.
	mount --bind "$R/proc/sys" "$R/proc/sys"
	mount -o remount,bind,ro,nosuid,nodev,noexec "$R/proc/sys"
	# Read-only /sys keeps udev and friends off the host's devices; the writable bits go on top.
	mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
	mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup"
	mount -t bpf -o nosuid,nodev,noexec,mode=700 bpf "$R/sys/fs/bpf"
	mount -t tracefs -o nosuid,nodev,noexec tracefs "$R/sys/kernel/tracing"
	mount -t debugfs -o nosuid,nodev,noexec debugfs "$R/sys/kernel/debug" 2>/dev/null || :
	# A private /dev with the usual nodes, /dev/kvm and the pty as console.
	mount -t tmpfs -o nosuid,mode=755,size=16m tmpfs "$R/dev"
	for n in null zero full random urandom tty kvm net/tun fuse; do
		[ -c "/dev/$n" ] || continue
		mkdir -p "$(dirname "$R/dev/$n")"
		mknod -m "$(stat -c %a "/dev/$n")" "$R/dev/$n" c "0x$(stat -c %t "/dev/$n")" "0x$(stat -c %T "/dev/$n")"
	done
	mkdir "$R/dev/pts" "$R/dev/shm" "$R/dev/mqueue"
	mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5,nosuid,noexec devpts "$R/dev/pts"
	mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$R/dev/shm"
	mount -t mqueue -o nosuid,nodev,noexec mqueue "$R/dev/mqueue"
	ln -s pts/ptmx "$R/dev/ptmx"
	ln -s /proc/self/fd "$R/dev/fd"
	ln -s /proc/self/fd/0 "$R/dev/stdin"
	ln -s /proc/self/fd/1 "$R/dev/stdout"
	ln -s /proc/self/fd/2 "$R/dev/stderr"
	touch "$R/dev/console"
	mount --bind "$console" "$R/dev/console"
	mount -t tmpfs -o nosuid,nodev,mode=755,size=20% tmpfs "$R/run"
	mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$R/tmp"
	mkdir "$R/run/.oldroot"
	cd "$R"
	pivot_root . run/.oldroot
	cd /
	umount -l /run/.oldroot
	rmdir /run/.oldroot
	exec /usr/bin/env -i container=other TERM=dumb SYSTEMD_COLORS=0 /lib/systemd/systemd --system
	;;
*)
	echo "launcher: unknown step '$step'" >&2
	exit 2
	;;
esac
LAUNCHER
	} >"$1"
}

# _sysroot_nsenter SECONDS CMD...: CMD in the namespaces and root of the booted
# container, with a clean environment, its process in the container's "run"
# cgroup; killed after SECONDS unless that is 0.
_sysroot_nsenter() {
	local t=$1
	shift
	local limit=()
	[ "$t" = 0 ] || limit=(timeout --foreground -k 2 "$t")
	sh -c 'echo $$ >"$0/cgroup.procs" 2>/dev/null; exec "$@"' "$SYSROOT_CGROUP/run" \
		nsenter --target "$SYSROOT_PID" --mount --uts --ipc --pid --cgroup --root --wd -- \
		/usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" SYSTEMD_PAGER=cat PAGER=cat SYSTEMD_COLORS=0 \
		"${limit[@]}" "$@"
}

# _sysroot_alive: is SYSROOT_PID still the systemd of our container?
_sysroot_alive() {
	[ -n "${SYSROOT_PID:-}" ] && [ -n "${SYSROOT_CGROUP:-}" ] || return 1
	grep -qs "^0::${SYSROOT_CGROUP#"$(_sysroot_cgroup2_root)"}/" "/proc/$SYSROOT_PID/cgroup"
}

# sysroot_boot DIR: boots DIR/lib/systemd/systemd as PID 1 of new PID, mount,
# cgroup, UTS and IPC namespaces (network shared with the host) and waits,
# at most $SYSROOT_BOOT_TIMEOUT (60) s, until it is "running" or "degraded".
# Exports SYSROOT_DIR, SYSROOT_PID, SYSROOT_LOG, SYSROOT_CGROUP.
sysroot_boot() {
	local dir=${1:-} v2 cg state log timeout=${SYSROOT_BOOT_TIMEOUT:-60} deadline t st="" c ctrls=()
	if [ -z "$dir" ]; then
		_sysroot_err "usage: sysroot_boot DIR"
		return 2
	fi
	if [ "$(id -u)" != 0 ]; then
		_sysroot_err "sysroot_boot needs root"
		return 1
	fi
	if _sysroot_alive; then
		_sysroot_err "a sysroot is already booted ($SYSROOT_DIR, pid $SYSROOT_PID); one at a time per shell"
		return 1
	fi
	for c in script unshare nsenter pivot_root mknod; do
		command -v "$c" >/dev/null 2>&1 || { _sysroot_err "sysroot_boot needs $c (util-linux/bsdutils)"; return 1; }
	done
	if [ ! -x "$dir/lib/systemd/systemd" ]; then
		_sysroot_err "$dir/lib/systemd/systemd missing: run sysroot_create $dir first"
		return 1
	fi
	dir=$(cd "$dir" && pwd) || return 1
	if [ -n "$(_sysroot_mounts_under "$dir")" ]; then
		_sysroot_err "something is mounted under $dir already:"
		_sysroot_mounts_under "$dir" >&2
		return 1
	fi
	v2=$(_sysroot_cgroup2_root) || { _sysroot_err "no cgroup v2 hierarchy is mounted on the host"; return 1; }
	cg=$v2/fpu_sysroot.$$.$RANDOM
	if ! mkdir "$cg" "$cg/payload" "$cg/run"; then
		_sysroot_err "cannot create cgroup $cg"
		rmdir "$cg/payload" "$cg/run" "$cg" 2>/dev/null
		return 1
	fi
	# Hand the container whatever v2 controllers its cgroup may have (none on a
	# hybrid host, where memory, pids, cpu... are bound to v1: MemoryMax= and
	# friends are then accepted inside but not enforced).
	read -ra ctrls <"$cg/cgroup.controllers" 2>/dev/null || :
	for c in "${ctrls[@]}"; do
		echo "+$c" >"$cg/cgroup.subtree_control" 2>/dev/null || :
	done
	state=$(mktemp -d /tmp/sysroot_state.XXXXXX) || { rmdir "$cg/payload" "$cg/run" "$cg"; return 1; }
	log=$dir.boot.log
	export SYSROOT_DIR=$dir SYSROOT_CGROUP=$cg SYSROOT_LOG=$log SYSROOT_PID=""
	SYSROOT_STATE=$state
	_sysroot_write_launcher "$state/launch.sh" "$dir" "$cg" "$state"
	script -qfec "exec sh $state/launch.sh host" /dev/null </dev/null >"$log" 2>&1 &
	SYSROOT_LAUNCHER=$!

	for t in $(seq 100); do
		[ -s "$state/pid" ] && break
		kill -0 "$SYSROOT_LAUNCHER" 2>/dev/null || break
		sleep 0.1
	done
	SYSROOT_PID=$(cat "$state/pid" 2>/dev/null)
	if [ -z "$SYSROOT_PID" ] || ! kill -0 "$SYSROOT_PID" 2>/dev/null; then
		_sysroot_err "the container did not start; $log says:"
		tail -n 30 "$log" >&2
		sysroot_shutdown
		return 1
	fi
	deadline=$((SECONDS + timeout))
	while [ "$SECONDS" -lt "$deadline" ]; do
		st=$(_sysroot_nsenter 5 systemctl is-system-running 2>/dev/null)
		case $st in
		running | degraded) return 0 ;;
		esac
		kill -0 "$SYSROOT_PID" 2>/dev/null || break
		sleep 0.25
	done
	_sysroot_err "systemd in $dir did not reach running/degraded within ${timeout}s (state: '${st:-none}'); $log says:"
	tail -n 40 "$log" >&2
	sysroot_shutdown
	return 1
}

# sysroot_run CMD...: runs CMD in the booted root (its PID, mount, cgroup, UTS
# and IPC namespaces, its / and cwd /) with a clean environment; stdin, stdout
# and stderr pass through, CMD's exit status is returned (124 if it was still
# running after $SYSROOT_RUN_TIMEOUT s, default 300; 0 means no limit).
sysroot_run() {
	if [ $# -eq 0 ]; then
		_sysroot_err "usage: sysroot_run CMD [ARGS...]"
		return 2
	fi
	if ! _sysroot_alive; then
		_sysroot_err "sysroot_run: no sysroot is booted (sysroot_boot DIR first)"
		return 125
	fi
	_sysroot_nsenter "${SYSROOT_RUN_TIMEOUT:-300}" "$@"
}

# _sysroot_gone PID: the process has exited (absent, or a zombie).
_sysroot_gone() {
	[ ! -e "/proc/$1" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" = Z ]
}

# _sysroot_wait_gone SECONDS PID: waits until PID has exited; 1 on timeout.
_sysroot_wait_gone() {
	local t
	for t in $(seq $(($1 * 10))); do
		_sysroot_gone "$2" && return 0
		sleep 0.1
	done
	_sysroot_gone "$2"
}

# sysroot_shutdown: powers the booted root off (SIGRTMIN+4 to its systemd, as
# systemd-nspawn does), kills what is left after 30 s, removes its cgroup and
# anything mounted under it. Idempotent; fine in an EXIT trap.
sysroot_shutdown() {
	local pid=${SYSROOT_PID:-} cg=${SYSROOT_CGROUP:-} launcher=${SYSROOT_LAUNCHER:-} state=${SYSROOT_STATE:-}
	local dir=${SYSROOT_DIR:-} pidns="" p t rc=0
	[ -n "$pid$cg$launcher$state" ] || return 0
	if _sysroot_alive; then
		pidns=$(readlink "/proc/$pid/ns/pid" 2>/dev/null)
		kill -s RTMIN+4 "$pid" 2>/dev/null || :
		if ! _sysroot_wait_gone 30 "$pid"; then
			_sysroot_err "systemd (pid $pid) did not power off within 30 s; killing the container"
			kill -KILL "$pid" 2>/dev/null || :
			_sysroot_wait_gone 5 "$pid" || :
		fi
	fi
	# Leftovers: everything in the container's cgroup, then anything else still
	# in its PID namespace (killing its PID 1 kills the namespace's processes).
	if [ -n "$cg" ] && [ -d "$cg" ]; then
		if [ -e "$cg/cgroup.kill" ]; then
			echo 1 >"$cg/cgroup.kill" 2>/dev/null || :
		else
			# (kernels before 5.14 have no cgroup.kill; xargs gets pids here, not file names)
			# shellcheck disable=SC2038
			find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null || :
		fi
		for t in $(seq 50); do
			grep -qs '^populated 0' "$cg/cgroup.events" && break
			sleep 0.1
		done
	fi
	if [ -n "$pidns" ]; then
		for p in /proc/[0-9]*; do
			[ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$pidns" ] && kill -KILL "${p#/proc/}" 2>/dev/null
		done
	fi
	if [ -n "$launcher" ]; then
		_sysroot_wait_gone 5 "$launcher" || kill -KILL "$launcher" 2>/dev/null || :
		_sysroot_wait_gone 5 "$launcher" || { _sysroot_err "launcher (pid $launcher) would not die"; rc=1; }
		wait "$launcher" 2>/dev/null || :
	fi
	if [ -n "$cg" ] && [ -d "$cg" ]; then
		for t in $(seq 50); do
			find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || :
			[ -d "$cg" ] || break
			sleep 0.1
		done
		if [ -d "$cg" ]; then
			_sysroot_err "could not remove cgroup $cg (still populated?)"
			rc=1
		fi
	fi
	# The container's mounts live in its own mount namespace and vanish with it;
	# this only catches anything that leaked into the caller's.
	[ -z "$dir" ] || _sysroot_umount_under "$dir" || rc=1
	[ -z "$state" ] || rm -rf "$state"
	SYSROOT_PID="" SYSROOT_CGROUP="" SYSROOT_LAUNCHER="" SYSROOT_STATE=""
	return $rc
}

# sysroot_destroy DIR: shuts DIR down if it is the booted root, unmounts
# anything left under it, removes it and its boot log.
sysroot_destroy() {
	local dir=${1:-}
	if [ -z "$dir" ]; then
		_sysroot_err "usage: sysroot_destroy DIR"
		return 2
	fi
	if [ ! -e "$dir" ]; then
		rm -f "$dir.boot.log"
		return 0
	fi
	dir=$(cd "$dir" && pwd) || return 1
	if [ "$dir" = / ]; then
		_sysroot_err "refusing to destroy /"
		return 1
	fi
	if [ "${SYSROOT_DIR:-}" = "$dir" ]; then
		sysroot_shutdown || return 1
	fi
	if ! _sysroot_umount_under "$dir"; then
		_sysroot_err "not removing $dir: something is still mounted under it"
		return 1
	fi
	if ! rm -rf --one-file-system -- "$dir"; then
		_sysroot_err "could not remove $dir"
		return 1
	fi
	rm -f "$dir.boot.log"
}
