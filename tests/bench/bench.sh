#!/bin/bash
# bench.sh: per-event BPF cost of the daemon's programs and of the equivalent bpftrace script, same workload;
# then what the daemon costs every system call on the host (its syscall tracepoints).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
LOOPS=${LOOPS:-200000}
SYSCALLS=${SYSCALLS:-3000000}
PORT=${PORT:-19659}

"$BUILD/fpu_exporter" --web.listen-address=127.0.0.1:$PORT --log.level=warn &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:$PORT/ && break; sleep 0.1; done
echo "== fpu_exporter (empty_baseline: an empty tp_btf program on x86_fpu_regs_deactivated)"
"$BUILD/fpu_bench" "$LOOPS"
kill $daemon; wait $daemon || true
trap - EXIT

if command -v bpftrace >/dev/null; then
	echo "== the equivalent bpftrace script"
	bpftrace -e '
	tracepoint:x86_fpu:x86_fpu_regs_deactivated { @saves[cgroup, args->xfeatures] = count(); }
	tracepoint:x86_fpu:x86_fpu_regs_activated { @loads[cgroup] = count(); }
	tracepoint:kvm:kvm_fpu { @kvm[tid, args->load] = count(); }
	tracepoint:signal:signal_deliver { @frames[cgroup] = count(); }
	tracepoint:syscalls:sys_enter_rt_sigreturn { @restores[cgroup] = count(); }' >/dev/null &
	bt=$!
	trap 'kill $bt 2>/dev/null; wait $bt 2>/dev/null || true' EXIT
	sleep 3
	"$BUILD/fpu_bench" "$LOOPS"
	kill $bt; wait $bt || true
	trap - EXIT
else
	echo "bpftrace is not installed: no comparison (apt-get install bpftrace)"
fi

# Any syscall tracepoint (rt_sigreturn for probes.signals, arch_prctl for probes.fpu) sends every
# system call of every task through the kernel's slow path while it is attached.
echo "== ns per getppid() on the host, median of 3 runs of $SYSCALLS calls each, 3 rounds"
med() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
calls() { for _ in 1 2 3; do "$BUILD/tests/sysloop" "$SYSCALLS"; done | med; }
with_config() {	# with_config YAML: the daemon running with it, calls measured, the daemon stopped
	printf '%b' "$1" >"$cfg"
	"$BUILD/fpu_exporter" --web.listen-address=127.0.0.1:$PORT --log.level=error --config.file="$cfg" >/dev/null &
	daemon=$!
	for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:$PORT/ && break; sleep 0.1; done
	calls
	kill $daemon; wait $daemon || true
}
cfg=$(mktemp)
trap 'rm -f "$cfg"' EXIT
for round in 1 2 3; do
	printf 'round %s: no daemon %s, defaults %s, probes.signals off %s, probes.fpu off %s, only probes.kvm %s\n' \
		"$round" "$(calls)" "$(with_config 'probes:\n  signals: true\n')" \
		"$(with_config 'probes:\n  signals: false\n')" "$(with_config 'probes:\n  fpu: false\n')" \
		"$(with_config 'probes:\n  signals: false\n  fpu: false\n')"
done
