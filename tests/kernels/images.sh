# images.sh: owns the cached guest images of make test-kernels: a bookworm root (sysroot.sh's cache) plus one Debian kernel each.
# Sourced; defines functions only. Needs root, debootstrap, e2fsprogs (mkfs.ext4 -d).
#
#   kernel_image SPEC     builds (or finds cached) the image of SPEC; sets KIMG (its directory:
#                         vmlinuz, initrd.img, root.img, version) and prints progress on stderr
#
# SPEC is SUITE[/PACKAGE]: the suite the kernel comes from (bullseye, bookworm,
# bookworm-backports, trixie-backports) and its image package (default
# linux-image-amd64, the newest of that suite). The root is always bookworm:
# the daemon is linked against bookworm's libraries, whatever kernel boots.
# A trixie-backports kernel takes from trixie only what it depends on.
#
# Cache: $SYSROOT_CACHE (default /var/cache/fpu_exporter)/kernels/SUITE-PACKAGE-KEY,
# where KEY hashes the package lists and the recipe: a change of either builds anew.
# FPU_KERNELS_REFRESH=1 rebuilds anyway (to pick up a newer kernel of the suite).

. "$(dirname "${BASH_SOURCE[0]}")/../e2e/sysroot.sh"

# Packages of the guest root on top of sysroot.sh's base list (bash, coreutils... are in minbase).
kernel_root_packages() {
	printf '%s\n' initramfs-tools kmod linux-base jq socat bpftool e2fsprogs
}

# Bump when kernel_image's recipe (sources, init stub, image size) changes.
_kernel_recipe() { echo kernel-recipe-2; }

# _kernel_sources SUITE: the apt sources a chroot needs for SUITE besides bookworm's
# (an older release's newest kernel is in its -security suite, LTS included).
_kernel_sources() {
	local mirror
	mirror=$(_sysroot_mirror)
	case $1 in
	bookworm) ;;
	bookworm-*) echo "deb $mirror $1 main" ;;
	trixie-backports) echo "deb $mirror trixie main"
	   echo "deb $mirror trixie-backports main" ;;
	*) echo "deb $mirror $1 main"
	   echo "deb $mirror $1-updates main"
	   echo "deb ${mirror%/debian}/debian-security $1-security main" ;;
	esac
}

# _kernel_pins SUITE: apt preferences that make the suite (and its -updates and -security)
# win over bookworm, so the newest version among them is installed.
_kernel_pins() {
	local s
	[ "$1" != bookworm ] || return 0
	if [ "$1" = trixie-backports ]; then
		# the kernel from backports; trixie below bookworm: only what the kernel needs
		printf 'Package: *\nPin: release n=trixie-backports\nPin-Priority: 990\n\n'
		printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n\n'
		return 0
	fi
	for s in "$1" "$1-updates" "$1-security"; do
		printf 'Package: *\nPin: release n=%s\nPin-Priority: 990\n\n' "$s"
	done
}

# _kernel_prepare ROOT SUITE: what a suite's kernel needs in the bookworm root before its install.
# trixie-backports' kernels run their hooks from /etc/kernel and /usr/share/kernel with one
# run-parts call, which bookworm's run-parts (one directory) refuses: /usr/share/kernel is kept
# out, and its one job that matters here, the image and config in /boot, done by a hook of ours.
_kernel_prepare() {
	local root=$1
	[ "$2" = trixie-backports ] || return 0
	mkdir -p "$root/etc/dpkg/dpkg.cfg.d" "$root/etc/kernel/postinst.d"
	echo 'path-exclude=/usr/share/kernel/*' >"$root/etc/dpkg/dpkg.cfg.d/fpu-no-share-kernel"
	cat >"$root/etc/kernel/postinst.d/00-fpu-boot" <<'HOOK'
#!/bin/sh
# the image and config in /boot, where bookworm's initramfs-tools and images.sh look
for f in vmlinuz config System.map; do
	[ -e "/boot/$f-$1" ] || [ ! -e "/usr/lib/modules/$1/$f" ] || cp "/usr/lib/modules/$1/$f" "/boot/$f-$1"
done
HOOK
	chmod 755 "$root/etc/kernel/postinst.d/00-fpu-boot"
}

# The guest's init: mount the tools disk and run the checks from it (tests/kernels/guest.sh).
_kernel_init_stub() {
	cat <<'STUB'
#!/bin/sh
# fpu-kernel-init: PID 1 of a make test-kernels guest (written by tests/kernels/images.sh).
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /opt/fpu
if ! mount -t ext4 -o ro /dev/vdb /opt/fpu; then
	echo "fpu-kernel-init: cannot mount the tools disk /dev/vdb" >/dev/ttyS1
	echo o >/proc/sysrq-trigger
fi
exec /bin/bash /opt/fpu/tests/kernels/guest.sh
STUB
}

kernel_image() {
	local spec=$1 suite pkg cache=${SYSROOT_CACHE:-/var/cache/fpu_exporter} key dir lockfd rc
	suite=${spec%%/*}
	pkg=linux-image-amd64
	[ "$spec" = "$suite" ] || pkg=${spec#*/}
	key=$({ _kernel_recipe; _sysroot_recipe; _sysroot_packages; kernel_root_packages; _kernel_init_stub
		_kernel_pins "$suite"; echo "$suite $pkg"
		[ "$suite" != trixie-backports ] || declare -f _kernel_prepare; } | sha256sum | cut -c1-12)
	dir=$cache/kernels/$suite-$pkg-$key
	KIMG=$dir
	# One builder per kernel at a time; the others wait for its image.
	mkdir -p "$cache/kernels" && exec {lockfd}>"$cache/kernels/.$suite-$pkg.lock" || return 1
	flock -w 1800 "$lockfd" || { echo "kernels: timed out waiting for another build of $spec" >&2; exec {lockfd}>&-; return 1; }
	_kernel_image_locked "$spec" "$suite" "$pkg" "$dir"
	rc=$?
	exec {lockfd}>&-
	return $rc
}

_kernel_image_locked() {
	local spec=$1 suite=$2 pkg=$3 dir=$4 cache=${SYSROOT_CACHE:-/var/cache/fpu_exporter} tmp root old ver rc=0
	if [ -s "$dir/root.img" ] && [ -s "$dir/vmlinuz" ] && [ -s "$dir/version" ] && [ "${FPU_KERNELS_REFRESH:-}" != 1 ]; then
		return 0
	fi
	tmp=$(mktemp -d /var/tmp/fpu_kernel.XXXXXX) || return 1
	root=$tmp/root
	echo "kernels: building the $spec image in $dir" >&2
	if ! sysroot_create "$root" $(kernel_root_packages) >"$tmp/create.log" 2>&1; then
		tail -n 20 "$tmp/create.log" >&2
		rm -rf "$tmp"
		return 1
	fi
	_kernel_sources "$suite" >"$root/etc/apt/sources.list.d/kernel.list"
	_kernel_pins "$suite" >"$root/etc/apt/preferences.d/kernel"
	_kernel_prepare "$root" "$suite"
	_kernel_init_stub >"$root/sbin/fpu-kernel-init"
	chmod 755 "$root/sbin/fpu-kernel-init"
	# In a private mount namespace: whatever is mounted for the chroot goes with it.
	if ! unshare --mount --propagation private sh -ec '
		r=$1 suite=$2 pkg=$3
		mount -t proc proc "$r/proc"
		mount -t sysfs sysfs "$r/sys"
		mount --bind /dev "$r/dev"
		cp /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || :
		export DEBIAN_FRONTEND=noninteractive
		chroot "$r" apt-get update -qq
		chroot "$r" apt-cache policy "$pkg"
		chroot "$r" apt-get install -y -qq --no-install-recommends "$pkg"
		chroot "$r" apt-get clean
		rm -rf "$r"/var/lib/apt/lists/*
		' sh "$root" "$suite" "$pkg" >"$tmp/install.log" 2>&1; then
		echo "kernels: installing $pkg from $suite failed; the last lines of the log:" >&2
		tail -n 20 "$tmp/install.log" >&2
		rc=1
	fi
	if [ $rc = 0 ]; then
		mkdir -p "$dir.new" && rm -rf "${dir:?}.new"/* &&
		ver=$(ls "$root/lib/modules" | sort -V | tail -n 1) && [ -n "$ver" ] &&
		cp "$root/boot/vmlinuz-$ver" "$dir.new/vmlinuz" &&
		cp "$root/boot/initrd.img-$ver" "$dir.new/initrd.img" &&
		echo "$ver" >"$dir.new/version" &&
		mkfs.ext4 -q -F -L fpuroot -d "$root" "$dir.new/root.img" 2G >/dev/null &&
		rm -rf "$dir" && mv "$dir.new" "$dir" || { echo "kernels: making the image of $spec failed" >&2; rc=1; }
	fi
	rm -rf "$tmp" "$dir.new"
	[ $rc = 0 ] || return 1
	# Images of older recipes or package lists for the same kernel are not needed any more.
	for old in "$cache/kernels/$suite-$pkg-"*; do
		[ "$old" = "$dir" ] || rm -rf "$old"
	done
	echo "kernels: $spec is $(cat "$dir/version")" >&2
	return $rc
}
