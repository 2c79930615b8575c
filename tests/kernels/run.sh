#!/bin/bash
# run.sh: make test-kernels: boots each Debian kernel of a list under QEMU TCG and runs the guest checks in it; one line per check and per kernel.
# FPU_KERNELS: the kernels, as images.sh SPECs (default: bullseye bookworm bookworm-backports trixie-backports,
# i.e. the newest Debian 5.10, 6.1, 6.12 and backports kernel, 7.x). FPU_KERNELS_TABLE=FILE writes the README's table.
# Exit 0 when every check passed on every kernel, 77 when nothing failed but an image could not be built.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
KERNELS=${FPU_KERNELS:-bullseye bookworm bookworm-backports trixie-backports}
. "$ROOT/tests/kernels/images.sh"

[ "$(id -u)" = 0 ] || { echo "test-kernels: needs root (debootstrap, mkfs, chroot)" >&2; exit 1; }
for f in fpu_exporter tests/sigloop tests/sigbad tests/testvmm tests/threadexit tests/avxspin tests/xcompperm \
	tests/noipv6.so; do
	[ -x "$BUILD/$f" ] || { echo "test-kernels: $BUILD/$f missing: make all tools first" >&2; exit 1; }
done
for c in qemu-system-x86_64 mkfs.ext4 promtool; do
	command -v $c >/dev/null || { echo "test-kernels: $c missing (make deps-test)" >&2; exit 1; }
done

WORK=$(mktemp -d /var/tmp/fpu_kernels.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The tools disk: the host-built binaries and the scripts, laid out like the repository.
mkdir -p "$WORK/tools/build/tests" "$WORK/tools/tests" "$WORK/tools/config"
cp "$BUILD/fpu_exporter" "$WORK/tools/build/"
cp "$BUILD/tests/sigloop" "$BUILD/tests/sigbad" "$BUILD/tests/testvmm" "$BUILD/tests/threadexit" \
	"$BUILD/tests/avxspin" "$BUILD/tests/xcompperm" "$BUILD/tests/noipv6.so" "$WORK/tools/build/tests/"
mkdir -p "$WORK/tools/bin" && cp "$(command -v promtool)" "$WORK/tools/bin/"	# for t_truth in the guest
cp -r "$ROOT/tests/e2e" "$ROOT/tests/kernels" "$WORK/tools/tests/"
cp "$ROOT/config/fpu_exporter.yaml" "$WORK/tools/config/"
mkfs.ext4 -q -F -L fputools -d "$WORK/tools" "$WORK/tools.img" 160M >/dev/null || { echo "test-kernels: mkfs of the tools disk failed" >&2; exit 1; }

# older VERSION: is the kernel just run no newer than VERSION?
older() { [ "$(printf '%s\n%s\n' "$kernel" "$1" | sort -V | head -n 1)" = "$kernel" ]; }

# table_row: the README's row for the kernel just run (uses kernel, package, spec, log, attached, probes).
table_row() {
	local exact="" missing=""
	passed() { awk -v n="$1" '$1 == "RESULT" && $2 == n && $3 == 0 { f = 1 } END { exit !f }' "$log.r"; }
	passed g_daemon && exact="signal frames and sigreturn restores (500 of 500)"
	if passed t_sigreturn_failures; then
		if older 5.14; then
			exact="$exact; sigreturn failures by reason (an unreadable frame also counts as bad_magic)"
		else
			exact="$exact; sigreturn failures by reason"
		fi
	fi
	if passed t_kvm_vmm; then
		if older 5.14; then
			exact="$exact; per-vCPU fpu_reload (kernel counter from debugfs, one vCPU at a time), VM named from -name"
		else
			exact="$exact; per-vCPU fpu_reload (KVM_GET_STATS_FD), VM named from -name"
		fi
	fi
	passed t_bad_input && exact="$exact; --check-config and bad-input errors"
	passed g_nosysadmin && exact="$exact; without CAP_SYS_ADMIN: sigreturn restores and AMX permission requests on raw sys_enter/sys_exit, kvm_fpu's counts and skipped runs adding up to KVM's"
	passed t_truth && exact="$exact; saves, drops and guest images against the kernel's trace"
	grep -q 'promtool ok' "$log.out" && exact="$exact; promtool"
	older 5.16 && missing="guest XSTATE_BV (fpstate->is_guest, 5.16)"
	missing=$missing$(awk '$1 == "PROBE" && $3 == 0 { printf "; %s", $2 }' "$log.r")
	printf '| %s | %s %s | %s | %s | %s |\n' "$kernel" "$spec" "$package" "$attached/$probes" \
		"${exact#; }" "$(m=${missing#; }; echo "${m:-none}")"
}

failed=0 noimage=0
rows=()
for spec in $KERNELS; do
	start=$SECONDS
	if ! kernel_image "$spec"; then
		echo "kernel $spec: no image (debootstrap or apt-get from the Debian mirror failed)"
		noimage=$((noimage + 1))
		continue
	fi
	log=$WORK/$(echo "$spec" | tr / _)
	# The root is a snapshot: the cached image is never written. One TCG thread for both
	# vCPUs: with a thread each, a vCPU once ran an int3 left by the kernel's text patching
	# after the patch was done (6.12, "Oops: int3" in __schedule). A panic ends QEMU at once.
	timeout 420 qemu-system-x86_64 -accel tcg,thread=single -cpu max -smp 2 -m 3G -display none -no-reboot \
		-kernel "$KIMG/vmlinuz" -initrd "$KIMG/initrd.img" \
		-append "root=/dev/vda rw console=ttyS0 quiet panic=-1 oops=panic init=/sbin/fpu-kernel-init" \
		-drive file="$KIMG/root.img",format=raw,if=virtio,snapshot=on \
		-drive file="$WORK/tools.img",format=raw,if=virtio,readonly=on \
		-serial file:"$log.console" -serial file:"$log.report" </dev/null >"$log.qemu" 2>&1
	tr -d '\r' <"$log.report" >"$log.r"
	kernel=$(awk '$1 == "KERNEL" { print $2; exit }' "$log.r")
	package=$(awk '$1 == "KERNEL" { print $3; exit }' "$log.r")
	[ -n "$kernel" ] || kernel="$spec(did not boot)"
	bad=0
	# Per check: its status; a failed one shows its output.
	while read -r _ name status secs; do
		if [ "$status" = 0 ]; then
			echo "kernel $kernel: $name ok (${secs}s)"
		else
			echo "kernel $kernel: $name FAIL (exit $status, ${secs}s)"
			awk -v n="$name" '$1 == "LOG" && $2 == n { $1 = ""; $2 = ""; print "    " substr($0, 3) }' "$log.r"
			bad=1
		fi
	done < <(awk '$1 == "RESULT"' "$log.r")
	wants="g_daemon t_sigreturn_failures t_kvm_vmm t_bad_input g_nosysadmin"
	older 6.16 || wants="$wants t_truth"
	for want in $wants; do
		awk -v n="$want" '$1 == "RESULT" && $2 == n { f = 1 } END { exit !f }' "$log.r" ||
			{ echo "kernel $kernel: $want FAIL (no result)"; bad=1; }
	done
	# promtool on the guest's scrape
	sed -n 's/^METRIC //p' "$log.r" >"$log.metrics"
	if [ ! -s "$log.metrics" ]; then
		echo "kernel $kernel: promtool FAIL (no scrape)"
		bad=1
	elif promtool check metrics <"$log.metrics" >"$log.promtool" 2>&1 && [ ! -s "$log.promtool" ]; then
		echo "kernel $kernel: promtool ok"
		echo "promtool ok" >"$log.out"
	else
		echo "kernel $kernel: promtool FAIL"
		sed 's/^/    /' "$log.promtool"
		bad=1
	fi
	attached=$(awk '$1 == "PROBE" && $3 == 1' "$log.r" | wc -l)
	probes=$(awk '$1 == "PROBE"' "$log.r" | wc -l)
	awk '$1 == "PROBE" && $3 == 0 { p = $2; $1 = $2 = $3 = ""; sub(/^ +/, ""); print "kernel '"$kernel"': probe " p " not attached: " $0 }' "$log.r"
	if ! grep -q '^DONE' "$log.r"; then
		echo "kernel $kernel: the guest did not finish; the end of its console:"
		tail -n 30 "$log.console" | sed 's/^/    /'
		bad=1
	fi
	if [ $bad = 0 ]; then
		echo "kernel $kernel ($spec $package): ok, $attached/$probes probes attached ($((SECONDS - start))s)"
	else
		echo "kernel $kernel ($spec $package): FAIL, $attached/$probes probes attached ($((SECONDS - start))s)"
		failed=$((failed + 1))
	fi
	[ -e "$log.out" ] || : >"$log.out"
	rows+=("$(table_row)")
done

if [ -n "${FPU_KERNELS_TABLE:-}" ]; then
	{
		echo "| kernel | Debian suite, package version | probes attached | exact | not available |"
		echo "|---|---|---|---|---|"
		printf '%s\n' "${rows[@]}"
	} >"$FPU_KERNELS_TABLE"
fi
[ $failed = 0 ] || exit 1
[ $noimage = 0 ] || exit 77	# nothing failed, but not every kernel could be run
