#!/bin/bash
# image.sh: make image: a cached debootstrap'd bookworm root (sysroot.sh's cache, runtime libraries only) imported into podman as BASE, then the Containerfile built on it.
#   bash tests/image.sh IMAGE [BASE]   (BASE given: build on it, e.g. debian:bookworm-slim)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/e2e/sysroot.sh"
IMAGE=${1:?usage: image.sh IMAGE [BASE]}
BASE=${2:-}
# podman runs containers here only with runc (crun refuses hybrid cgroups) and ulimits under the hard limit.
PODMAN_RUN_OPTS=(--runtime runc --ulimit nofile=1024:20000 --ulimit nproc=1024:1024)

# The image's root is not a booted system: sysroot_create's cache, locking and debootstrap with
# this package list (the daemon's shared libraries) and this one-time configuration instead.
_sysroot_packages() { printf '%s\n' libbpf1 libelf1 libmicrohttpd12 libyaml-0-2 libsystemd0 libcjson1 libcrypt1 zlib1g; }
_sysroot_recipe() { echo image-1; }
_sysroot_configure() {
	chroot "$1" apt-get clean >/dev/null 2>&1 || true
	rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/*.log "$1"/var/cache/debconf/*-old
	: >"$1/etc/machine-id"
	rm -f "$1/etc/hostname" "$1/etc/resolv.conf"
}

[ -x "$ROOT/build/fpu_exporter" ] || { echo "image: build/fpu_exporter missing (make all)" >&2; exit 1; }
if [ -z "$BASE" ]; then
	BASE=localhost/fpu-exporter-base:bookworm
	# Imported once per recipe: the label names the package list and recipe it was made from.
	key=$( { _sysroot_recipe; _sysroot_packages; } | sha256sum | cut -c1-16)
	if [ "$(podman image inspect -f '{{index .Labels "fpu_exporter.base"}}' "$BASE" 2>/dev/null)" != "$key" ]; then
		tmp=$(mktemp -d /tmp/fpu_image.XXXXXX)
		trap 'sysroot_destroy "$tmp/root"; rmdir "$tmp"' EXIT
		sysroot_create "$tmp/root" || exit 1
		podman rmi "$BASE" >/dev/null 2>&1
		tar -C "$tmp/root" --numeric-owner -cf - . |
			podman import --change 'CMD ["/bin/bash"]' --change "LABEL fpu_exporter.base=$key" - "$BASE" >/dev/null ||
			{ echo "image: podman import failed" >&2; exit 1; }
		echo "image: base $BASE imported from a debootstrap'd bookworm root"
	fi
fi
old=$(podman image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null)
podman build "${PODMAN_RUN_OPTS[@]}" --network host --layers=false --build-arg BASE="$BASE" \
	-f "$ROOT/Containerfile" -t "$IMAGE" "$ROOT" || exit 1
# The image this build replaced, unless a container still uses it.
[ -z "$old" ] || [ "$old" = "$(podman image inspect -f '{{.Id}}' "$IMAGE")" ] || podman rmi "$old" >/dev/null 2>&1
echo "image: $IMAGE, $(podman image inspect -f '{{.Size}}' "$IMAGE") bytes"
