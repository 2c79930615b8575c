#!/bin/bash
# t_churn.sh: 2,000 short-lived cgroups and 50 VMs under scraping: all named, all gone after the grace period, RSS flat.
. "$(dirname "$0")/lib.sh"

require_kvm
V2=$(cgroup_v2_root)
printf 'cgroups:\n  grace_period: 2s\n' >"$WORK/churn.yaml"
start_daemon --config.file="$WORK/churn.yaml"
rss() { awk '/^VmRSS:/ { print $2 }' /proc/$DAEMON_PID/status; }

# churn N TAG VMS: N cgroups, each running a short signal workload, and VMS test VMs, 10 at a time.
churn() {
	local n=$1 tag=$2 vms=$3 i cg
	for ((i = 0; i < n; i++)); do
		cg="$V2/fpu_e2e_$$_${tag}_$i"
		mkdir "$cg"
		sh -c 'echo $$ > "$0/cgroup.procs" && exec "$1" 3' "$cg" "$BUILD/tests/sigloop" >/dev/null
		rmdir "$cg"
	done
	for ((i = 0; i < vms; i += 10)); do
		local pids=()
		for j in $(seq "$i" $((i + 9))); do
			"$BUILD/tests/testvmm" -name "guest=churn-$tag-$j" --runs 5,5 --ready "$WORK/vm-$tag-$j" \
				>/dev/null &
			pids+=($!)
		done
		for j in $(seq "$i" $((i + 9))); do
			for _ in $(seq 100); do [ -s "$WORK/vm-$tag-$j" ] && break; sleep 0.05; done
		done
		sleep 0.3	# a scrape or two sees them
		kill "${pids[@]}"
		wait "${pids[@]}"
	done
}
# scraper: every 0.2 s while the churn runs, keeping every sample with an unknown cgroup and
# the names of the churn's cgroups it saw
scraper() {
	while [ ! -e "$WORK/stop" ]; do
		curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/s"
		grep 'cgroup="unknown"' "$WORK/s" >>"$WORK/unknown"
		grep -o "cgroup=\"/fpu_e2e_$$_main_[0-9]*\"" "$WORK/s" | sort -u >>"$WORK/seen"
		sleep 0.2
	done
}
# gone TAG: waits until no series of the churn's cgroups and VMs is left (grace 2 s, rescans every 1 s)
gone() {
	for _ in $(seq 40); do
		scrape >"$WORK/m"
		grep -q "fpu_e2e_$$_$1_\|domain=\"churn-$1-" "$WORK/m" || return 0
		sleep 0.25
	done
	grep "fpu_e2e_$$_$1_\|domain=\"churn-$1-" "$WORK/m" | head -3 >&2
	fail "series of removed cgroups or exited VMs still there 10 s after the churn"
}

: >"$WORK/unknown"
: >"$WORK/seen"
scraper &
scraper_pid=$!
at_exit "touch '$WORK/stop'; wait $scraper_pid"
churn 200 warm 5	# allocator and caches warmed up
gone warm
before=$(rss)
start=$(date +%s)
churn 2000 main 50
gone main
after=$(rss)
touch "$WORK/stop"
wait $scraper_pid
note "churn of 2000 cgroups and 50 VMs in $(( $(date +%s) - start )) s; RSS before ${before} kB, after ${after} kB"
[ "$after" -le $((before * 110 / 100)) ] || fail "RSS grew by more than 10%: $before kB -> $after kB"
if [ -s "$WORK/unknown" ]; then
	head -3 "$WORK/unknown" >&2
	fail "$(wc -l <"$WORK/unknown") samples with cgroup=\"unknown\" during the churn"
fi
grep -q "fpu_e2e_$$_main_" "$WORK/m" && fail "removed cgroups still exported"
# every short-lived cgroup was exported under its own path at least once (none dropped unnamed)
named=$(sort -u "$WORK/seen" | wc -l)
[ "$named" = 2000 ] || fail "only $named of the 2000 churned cgroups were ever exported by name"
entries=$(metric_sum "$WORK/m" fpu_exporter_map_entries 'map="vcpu_threads"')
note "all 2000 cgroups exported by name, none unknown; vcpu_threads map holds $entries entries after"
