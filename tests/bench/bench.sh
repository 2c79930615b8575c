#!/bin/bash
# bench.sh: per-event BPF cost of the daemon's programs and of the equivalent bpftrace script, same workload.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
LOOPS=${LOOPS:-200000}
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
else
	echo "bpftrace is not installed: no comparison (apt-get install bpftrace)"
fi
