# lib.sh: shared helpers for the end-to-end tests: the daemon on a loopback port, scraping, cgroups, verdicts.
# Sourced by each tests/e2e/t_*.sh; they run as root on a host with BPF and KVM.

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
EXPORTER=$BUILD/fpu_exporter
WORK=$(mktemp -d /tmp/fpu_e2e.XXXXXX)
DAEMON_PID=
PORT=
CLEANUPS=()

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "  $*"; }

# A test that cannot run here skips (exit 77) on a laptop, and fails in CI.
skip_or_fail() {
	if [ "${CI:-}" = true ] || [ "${FPU_EXPORTER_REQUIRE:-}" = 1 ]; then
		fail "required but unavailable: $*"
	fi
	echo "SKIP: $*" >&2
	exit 77
}

at_exit() { CLEANUPS+=("$1"); }
cleanup() {
	local i
	for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUPS[i]}" || true; done
	stop_daemon
	rm -rf "$WORK"
}
trap cleanup EXIT

# kernel_before MAJOR.MINOR: the running kernel is older than that release.
kernel_before() {
	local want=$1 have
	have=$(uname -r | grep -oE '^[0-9]+\.[0-9]+')
	[ "$(printf '%s\n%s\n' "$have" "$want" | sort -V | head -n 1)" = "$have" ] && [ "$have" != "$want" ]
}

require_root() { [ "$(id -u)" = 0 ] || skip_or_fail "root is needed to load BPF"; }
require_kvm() { [ -c /dev/kvm ] && [ -r /dev/kvm ] || skip_or_fail "/dev/kvm is not available"; }

# A port below the ephemeral range (32768-), used by no socket at all: an outgoing
# connection's local port would make bind() fail too.
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 12000))
		ss -tanH "( sport = :$p )" 2>/dev/null | grep -q . || { echo "$p"; return; }
	done
	fail "no free port found"
}

# start_daemon [flags...]: runs the exporter on 127.0.0.1:$PORT and waits until it answers.
start_daemon() {
	require_root
	PORT=$(free_port)
	"$EXPORTER" --web.listen-address="127.0.0.1:$PORT" "$@" >"$WORK/daemon.log" 2>&1 &
	DAEMON_PID=$!
	for _ in $(seq 100); do
		if curl -sf -o /dev/null "http://127.0.0.1:$PORT/"; then
			return 0
		fi
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$WORK/daemon.log" >&2
	grep -q 'loading BPF\|no kernel BTF' "$WORK/daemon.log" && skip_or_fail "BPF cannot be loaded here"
	fail "the daemon did not start"
}

stop_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	kill -TERM "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}

scrape() { curl -sf "http://127.0.0.1:$PORT${1:-/metrics}"; }

# metric_sum FILE NAME [LABEL=\"VALUE\"...]: sum of the samples of NAME carrying every given label.
metric_sum() {
	local file=$1 name=$2
	shift 2
	# through the environment: awk -v would take the backslashes of escaped label values
	NAME=$name WANT="$*" awk '
		BEGIN { name = ENVIRON["NAME"]; n = split(ENVIRON["WANT"], w, " ") }
		/^#/ { next }
		{
			split($0, parts, /[{ ]/)
			if (parts[1] != name) next
			for (i = 1; i <= n; i++) if (index($0, w[i]) == 0) next
			sum += $NF; found = 1
		}
		END { if (found) printf "%.0f\n", sum; else print "absent" }' "$file"
}

# make_cgroup NAME: a fresh cgroup v2 directory; CG is its path relative to the v2 root.
cgroup_v2_root() {
	awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' \
		/proc/self/mountinfo | sort | awk 'NR == 1 || $0 == "/sys/fs/cgroup" { r = $0 } END { print r }'
}
make_cgroup() {	# make_cgroup NAME: sets CG; not in $(...), whose subshell would lose the cleanup
	local root
	root=$(cgroup_v2_root)
	[ -n "$root" ] || skip_or_fail "no cgroup v2 hierarchy mounted"
	CG="/fpu_e2e_$$_$1"
	mkdir "$root$CG" || fail "mkdir $root$CG"
	at_exit "rmdir '$root$CG' 2>/dev/null"
}
# run_in_cgroup REL CMD...: runs CMD as a member of the cgroup.
run_in_cgroup() {
	local rel=$1
	shift
	sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$(cgroup_v2_root)$rel" "$@"
}

# spawn_in_cgroup CGROUP CMD...: CMD in the background in CGROUP; SPAWNED is its pid
# ("run_in_cgroup ... &" gives a subshell's pid, and killing that leaves CMD running).
spawn_in_cgroup() {
	local rel=$1
	shift
	sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$(cgroup_v2_root)$rel" "$@" &
	SPAWNED=$!
}

# Ground truth from the kernel's own trace events, in a private tracefs instance.
# ftrace_open NAME EVENT[:FILTER]...: records each subsystem/event with its filter. Select the
# workload's tasks in the filter by comm ('comm == "threadexit"'), not with set_event_pid: pid
# filtering decides at sched_switch by the next task, so an event fired inside the switch (a
# save of the outgoing task) would be kept or dropped by who comes in.
ftrace_open() {
	local t=/sys/kernel/tracing ev e f
	[ -d $t/instances ] || mount -t tracefs tracefs $t 2>/dev/null || skip_or_fail "no tracefs at $t"
	FTRACE=$t/instances/fpu_e2e_$$_$1
	shift
	mkdir "$FTRACE" || fail "mkdir $FTRACE"
	at_exit "echo 0 > '$FTRACE/tracing_on'; rmdir '$FTRACE'"
	echo 8192 >"$FTRACE/buffer_size_kb"
	[ "${FTRACE_DEFER:-}" = 1 ] && echo 0 >"$FTRACE/tracing_on"	# ftrace_start turns it on
	for ev; do
		e=${ev%%:*} f=
		[ "$e" = "$ev" ] || f=${ev#*:}
		[ -d "$FTRACE/events/$e" ] || skip_or_fail "no trace event $e"
		[ -z "$f" ] || echo "$f" >"$FTRACE/events/$e/filter" || fail "filter $f on $e"
		echo 1 >"$FTRACE/events/$e/enable"
	done
}
ftrace_start() { echo 1 >"$FTRACE/tracing_on"; }
# ftrace_count EVENT: how many EVENT records the instance holds; fails if any were lost.
ftrace_count() {
	echo 0 >"$FTRACE/tracing_on"
	! grep -h '^overrun: [1-9]' "$FTRACE"/per_cpu/cpu*/stats | grep -q . || fail "trace buffer overrun"
	grep -c " $1:" "$FTRACE/trace"
}
# run_traced COMM CMD...: runs a workload that joins its cgroup as COMM and waits for a line on
# stdin (tests/workloads/cgjoin.h). Once it waits: scrapes the baseline into $WORK/m0, starts the
# trace (ftrace_open with FTRACE_DEFER=1 before), lets it go and waits for it. A save of an
# exiting task is counted at the next deactivation on its CPU: one is made on each afterwards.
run_traced() {
	local comm=$1 wl
	shift
	rm -f "$WORK/go"
	mkfifo "$WORK/go"
	"$@" <"$WORK/go" >/dev/null &
	wl=$!
	exec 9>"$WORK/go"
	for _ in $(seq 100); do
		[ "$(cat /proc/$wl/comm 2>/dev/null)" = "$comm" ] && [ "$(awk '{ print $3 }' /proc/$wl/stat)" = S ] && break
		sleep 0.05
	done
	[ "$(cat /proc/$wl/comm 2>/dev/null)" = "$comm" ] || fail "$1 did not join its cgroup as $comm"
	scrape >"$WORK/m0" || fail "scrape failed"
	ftrace_start
	echo go >&9
	exec 9>&-
	wait $wl || fail "$1 failed"
	for c in $(seq 0 $(($(nproc) - 1))); do taskset -c "$c" "$BUILD/tests/avxspin" 3 >/dev/null; done
}
# since NAME LABEL...: what the series matching grew by from $WORK/m0 to $WORK/m (absent is 0).
since() {
	local a b
	a=$(metric_sum "$WORK/m" "$@")
	b=$(metric_sum "$WORK/m0" "$@")
	echo $(( ${a/absent/0} - ${b/absent/0} ))
}
# unique_series FILE: fails if a series (name and labels) appears twice.
unique_series() {
	local dup
	dup=$(grep -v '^#' "$1" | sed 's/ [^ ]*$//' | sort | uniq -d | head -3)
	[ -z "$dup" ] || fail "series exported twice: $dup"
}
# monotonic BEFORE AFTER: every counter (_total) of BEFORE that AFTER has is not lower there.
monotonic() {
	awk '/^#/ { next }
	     { k = substr($0, 1, length($0) - length($NF) - 1) }
	     NR == FNR { if ($1 ~ /_total(\{|$)/) v[k] = $NF; next }
	     (k in v) && $NF + 0 < v[k] + 0 { print k " " v[k] " -> " $NF; bad = 1 }
	     END { exit bad }' "$1" "$2" >"$WORK/backwards" || fail "counters went back: $(head -3 "$WORK/backwards")"
}

# xcomp_requests_match METRICS CGROUP: the cgroup's fpu_xcomp_perm_requests_total, by kind and
# result, is what xcompperm printed (process_granted=... guest_refused=..., eval'd before).
xcomp_requests_match() {
	local kind result want got
	for kind in process guest; do
		for result in granted refused; do
			want=$(eval echo "\$${kind}_${result}")
			got=$(metric_sum "$1" fpu_xcomp_perm_requests_total "cgroup=\"$2\"" "kind=\"$kind\"" \
				'feature="amx_tiledata"' "result=\"$result\"")
			[ "$want" = 0 ] && want=absent
			note "$kind $result: the calls returned $want, exporter $got"
			[ "$got" = "$want" ] ||
				fail "fpu_xcomp_perm_requests_total{kind=\"$kind\",result=\"$result\"} = $got, want $want"
		done
	done
}

# kernel_matrix SPEC NAME: make test-kernels for one Debian kernel (tests/kernels/run.sh), every guest check passing.
kernel_matrix() {
	require_root
	command -v qemu-system-x86_64 >/dev/null || skip_or_fail "qemu-system-x86_64 is not installed"
	FPU_KERNELS=$1 bash "$ROOT/tests/kernels/run.sh"
	case $? in
	0) ;;
	77) skip_or_fail "no image of $2 could be built (the Debian mirror?)" ;;
	*) fail "$2 ($1): a check failed" ;;
	esac
}
