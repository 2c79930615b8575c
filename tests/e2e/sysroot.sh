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
# SYSROOT_BOOT_TIMEOUT (seconds, default 60).
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
	local m n
	[ -n "${1:-}" ] || return 0
	for n in 1 2 3 4 5; do
		m=$(_sysroot_mounts_under "$1")
		[ -n "$m" ] || return 0
		printf '%s\n' "$m" | while IFS= read -r m; do umount -l -- "$m" 2>/dev/null; done
	done
	_sysroot_err "could not unmount everything under $1:"
	_sysroot_mounts_under "$1" >&2
	return 1
}

# _sysroot_configure ROOT: one-time tweaks of a fresh root (kept in the cache).
_sysroot_configure() {
	local r=$1 u
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
	key=$(printf 'bookworm minbase %s\n%s\n' "$(dpkg --print-architecture 2>/dev/null || uname -m)" "$list" |
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
				--include="$(echo $list | tr ' ' ,)" bookworm "$dir" "$mirror" >"$cache/debootstrap.log" 2>&1; then
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
			if [ $rc != 0 ]; then
				# Never leave a half-built root behind (it may hold /proc mounts of debootstrap).
				_sysroot_umount_under "$dir"
				find "$dir" -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>/dev/null
			fi
		fi
	else
		echo "sysroot: unpacking cached $tarball into $dir..."
		if ! timeout 600 tar -C "$dir" --numeric-owner --xattrs --xattrs-include='*' -xpzf "$tarball"; then
			_sysroot_err "could not unpack $tarball into $dir"
			rc=1
		fi
	fi
	exec {lockfd}>&-
	return $rc
}
