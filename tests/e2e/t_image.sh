#!/bin/bash
# t_image.sh: make image, run it with podman as the DaemonSet does (host PID, BPF/PERFMON/SYS_RESOURCE/SYSLOG, btf, cgroup, tracefs): every probe attached, a host test VMM named with KVM's exact fpu_reload; image size and memory.
. "$(dirname "$0")/lib.sh"

require_root
require_kvm
command -v podman >/dev/null && command -v runc >/dev/null || skip_or_fail "podman and runc are not installed"
command -v promtool >/dev/null || skip_or_fail "promtool (package prometheus) is not installed"
IMAGE=localhost/fpu-exporter:0.1.0
make -s -C "$ROOT" image IMAGE="$IMAGE" >"$WORK/image.log" 2>&1 || { tail -30 "$WORK/image.log"; fail "make image"; }
size=$(podman image inspect -f '{{.Size}}' "$IMAGE") || fail "no image $IMAGE"
note "make image: $IMAGE, $size bytes ($((size / 1048576)) MiB)"
[ "$(podman run --rm --network none --runtime runc --ulimit nofile=1024:20000 --ulimit nproc=1024:1024 "$IMAGE" --version)" = "fpu_exporter version 0.1.0" ] ||
	fail "the image's binary does not run"

# What config/kubernetes.yaml asks for, and nothing more.
PORT=$(free_port)
NAME=fpu_e2e_image_$$
tr=/sys/kernel/tracing
[ -d $tr/events ] || skip_or_fail "tracefs is not mounted at $tr"
podman run -d --name "$NAME" --runtime runc --ulimit nofile=1024:20000 --ulimit nproc=1024:1024 \
	--network host --pid host --read-only --security-opt seccomp=unconfined \
	--cap-drop ALL --cap-add BPF,PERFMON,SYS_RESOURCE,SYSLOG \
	-v /sys/kernel/btf:/sys/kernel/btf:ro -v /sys/fs/cgroup:/sys/fs/cgroup:ro -v $tr:$tr \
	"$IMAGE" --config.file=/etc/fpu_exporter/fpu_exporter.yaml --web.listen-address="127.0.0.1:$PORT" \
	>"$WORK/run.log" 2>&1 || { cat "$WORK/run.log"; fail "podman run"; }
at_exit "podman rm -f '$NAME' >/dev/null 2>&1"
for _ in $(seq 100); do
	curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && break
	[ "$(podman inspect -f '{{.State.Running}}' "$NAME")" = true ] || break
	sleep 0.1
done
scrape >"$WORK/m" || fail "/metrics does not answer: $(podman logs "$NAME" 2>&1 | tail -10)"
attached=$(grep -c '^fpu_exporter_probe_attached{.*} 1$' "$WORK/m")
grep '^fpu_exporter_probe_attached{.*} 0$' "$WORK/m" && fail "probes not attached in the container: $(podman logs "$NAME" 2>&1 | grep -i 'warn\|error')"
[ "$attached" -ge 10 ] || fail "only $attached probes attached"
podman logs "$NAME" 2>&1 | grep -q 'capabilities kept: none' || fail "the daemon kept capabilities"
note "container: $attached probes attached, capabilities dropped after attach"

# A test VMM on the host, seen through the host PID namespace.
"$BUILD/tests/testvmm" -name guest=image-vm-$$ --runs 5 --hold-threads --ready "$WORK/ready" >"$WORK/vmm.out" 2>&1 &
vmm=$!
at_exit "kill $vmm 2>/dev/null; wait $vmm 2>/dev/null"
for _ in $(seq 100); do [ -s "$WORK/ready" ] && break; sleep 0.1; done
[ -s "$WORK/ready" ] || { cat "$WORK/vmm.out"; fail "the test VMM did not get ready"; }
eval "$(tr ' ' '\n' <"$WORK/ready" | grep -E '^fpu_reload=[0-9]+$')"
# Small load: 30 scrapes while the VM is up, then the daemon's peak memory.
for _ in $(seq 30); do scrape >"$WORK/m" || fail "scrape failed"; done
out=$(promtool check metrics <"$WORK/m" 2>&1) || fail "promtool check metrics: $out"
domain="domain=\"image-vm-$$\""
info=$(metric_sum "$WORK/m" fpu_guest_info "$domain" "pid=\"$vmm\"")
[ "$info" = 1 ] || fail "fpu_guest_info{$domain,pid=\"$vmm\"} = $info"
got=$(metric_sum "$WORK/m" fpu_guest_reloads_total "$domain" 'vcpu="0"')
[ "$got" = "$fpu_reload" ] || fail "fpu_guest_reloads_total{$domain} = $got, KVM says $fpu_reload"
note "test VMM pid $vmm named $domain, fpu_guest_reloads_total = KVM's fpu_reload = $got; promtool clean"

pid=$(podman inspect -f '{{.State.Pid}}' "$NAME")
hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status")
[ -n "$hwm" ] || fail "no VmHWM for pid $pid"
# The container's memory cgroup also holds the BPF maps' kernel memory (memcg-accounted since 5.11).
cg=$(awk -F: '$2 == "memory" || ($1 == "0" && $2 == "") { print $3; exit }' "/proc/$pid/cgroup")
peak=
for f in /sys/fs/cgroup/memory$cg/memory.max_usage_in_bytes /sys/fs/cgroup$cg/memory.peak; do
	[ -r "$f" ] && { peak=$(cat "$f"); break; }
done
note "daemon VmHWM ${hwm} kB; container memory cgroup peak ${peak:-unknown} bytes ($(( ${peak:-0} / 1048576 )) MiB)"
