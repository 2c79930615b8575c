#!/bin/bash
# t_unnamed.sh: a cgroup the daemon never saw and cannot name (removed, its rmdir record evicted): its map entries are dropped after the grace period, each counted once in fpu_exporter_cgroups_unnamed_total, and nothing of it is exported.
. "$(dirname "$0")/lib.sh"

command -v bpftool >/dev/null || skip_or_fail "bpftool is needed to read the daemon's maps"
V2=$(cgroup_v2_root)
printf 'cgroups:\n  grace_period: 2s\nbpf:\n  max_removed_cgroups: 64\n' >"$WORK/unnamed.yaml"
start_daemon --config.file="$WORK/unnamed.yaml"

# map_id NAME: the id of the daemon's BPF map NAME, from its file descriptors
map_id() {
	local f id
	for f in /proc/"$DAEMON_PID"/fdinfo/*; do
		id=$(awk '$1 == "map_id:" { print $2 }' "$f" 2>/dev/null)
		[ -n "$id" ] && bpftool map show id "$id" | grep -q " name $1 " && { echo "$id"; return; }
	done
	fail "the daemon has no BPF map $1"
}
HOT=$(map_id cgroup_hot) RARE=$(map_id cgroup_rare) XSTATES=$(map_id cgroup_xstates)
XCOMP=$(map_id xcomp_requests) REMOVED=$(map_id removed_cgroups)

# entries ID: the cgroup id's entries in the daemon's four cgroup maps, as the kernel holds them
entries() {
	local n=0 m
	for m in "$HOT" "$RARE"; do
		n=$((n + $(bpftool map dump id "$m" | grep -c "^ *\"key\": $1,$")))
	done
	for m in "$XSTATES" "$XCOMP"; do
		n=$((n + $(bpftool map dump id "$m" | grep -c "^ *\"cgroup_id\": $1,$")))
	done
	echo "$n"
}
# le64 N: N as 8 bytes, little-endian, for bpftool's key hex
le64() {
	local h
	h=$(printf '%016x' "$1")
	echo "${h:14:2} ${h:12:2} ${h:10:2} ${h:8:2} ${h:6:2} ${h:4:2} ${h:2:2} ${h:0:2}"
}
unnamed() { scrape >"$WORK/m" && metric_sum "$WORK/m" fpu_exporter_cgroups_unnamed_total; }

scrape >/dev/null || fail "scrape failed"
# A collection may see the cgroup alive, or its rmdir record may outlive the evictions: then it
# is named after all, and the try is made again with another cgroup.
for try in 1 2 3 4 5; do
	name="fpu_e2e_$$_unnamed_$try"
	mkdir "$V2/$name" || fail "mkdir $V2/$name"
	id=$(stat -c %i "$V2/$name")
	run_in_cgroup "/$name" "$BUILD/tests/sigloop" 50 >/dev/null || fail "sigloop failed"
	rmdir "$V2/$name" || fail "rmdir $V2/$name"
	for i in $(seq 300); do	# push its rmdir record out of the 64-entry LRU
		mkdir "$V2/fpu_e2e_$$_evict" && rmdir "$V2/fpu_e2e_$$_evict"
	done
	if bpftool map lookup id "$REMOVED" key hex $(le64 "$id") >/dev/null 2>&1; then
		note "try $try: the rmdir record of cgroup id $id is still there"
		continue
	fi
	n=$(entries "$id")
	before=$(unnamed) || fail "scrape failed"	# this collection finds the id unknown
	if grep -q "$name" "$WORK/m"; then
		note "try $try: the daemon named the cgroup (a collection saw it)"
		continue
	fi
	[ "$n" -gt 0 ] || fail "the workload left no map entry for cgroup id $id"
	for _ in $(seq 40); do	# grace 2 s, rescans every 1 s
		after=$(unnamed) || fail "scrape failed"
		[ "$after" != "$before" ] && break
		sleep 0.25
	done
	left=$(entries "$id")
	note "cgroup id $id: $n map entries; fpu_exporter_cgroups_unnamed_total $before -> $after; $left entries left"
	[ "$after" = $((before + n)) ] || fail "fpu_exporter_cgroups_unnamed_total went $before -> $after, want +$n"
	sleep 1
	[ "$(unnamed)" = "$after" ] || fail "fpu_exporter_cgroups_unnamed_total moved again: $after -> $(metric_sum "$WORK/m" fpu_exporter_cgroups_unnamed_total)"
	[ "$left" = 0 ] || fail "$left map entries of the unnamed cgroup left"
	grep -q "$name\|cgroup=\"unknown\"" "$WORK/m" && fail "a series of the unnamed cgroup is exported"
	exit 0
done
fail "in 5 tries the daemon named the cgroup every time"
