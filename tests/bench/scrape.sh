#!/bin/bash
# scrape.sh: scrape cost on a big host: 1k, 3k, 10k cgroups that each ran a task, then 60 and 250 VMs of 8 vCPUs.
# Prints per stage: series, bytes, median scrape time (text, gzip), and the daemon's RSS and peak RSS.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
PORT=${PORT:-19660}
SCRAPES=${SCRAPES:-20}
VMS=${VMS:-250}
V2=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' \
	/proc/self/mountinfo | sort | awk 'NR == 1 || $0 == "/sys/fs/cgroup" { r = $0 } END { print r }')
TOP=$V2/fpu_bench_$$
WORK=$(mktemp -d /tmp/fpu_bench.XXXXXX)
vmms=()

cleanup() {
	[ ${#vmms[@]} = 0 ] || kill "${vmms[@]}" 2>/dev/null
	wait 2>/dev/null
	for d in "$TOP"/c*; do [ -d "$d" ] && rmdir "$d"; done
	rmdir "$TOP" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

"$BUILD/fpu_exporter" --web.listen-address=127.0.0.1:$PORT --log.level=warn &
daemon=$!
vmms+=($daemon)
for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:$PORT/ && break; sleep 0.1; done
mkdir "$TOP"

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
kb() { awk -v k="$1" '$1 == k":" { print $2 }' /proc/$daemon/status; }

stage() {
	local name=$1 text gz bytes series
	for _ in $(seq "$SCRAPES"); do
		curl -s -o "$WORK/m" -w '%{time_total}\n' http://127.0.0.1:$PORT/metrics >>"$WORK/t.$name"
		curl -s -o /dev/null -H 'Accept-Encoding: gzip' -w '%{time_total} %{size_download}\n' \
			http://127.0.0.1:$PORT/metrics >>"$WORK/g.$name"
	done
	text=$(median <"$WORK/t.$name")
	gz=$(awk '{ print $1 }' "$WORK/g.$name" | median)
	bytes=$(stat -c %s "$WORK/m")
	series=$(grep -vc '^#' "$WORK/m")
	full=$(awk '/^fpu_exporter_map_full_total/ { s += $NF } END { print s + 0 }' "$WORK/m")
	kmem=$(awk '/^fpu_exporter_map_memory_bytes/ { s += $NF } END { printf "%.1f", s / 1048576 }' "$WORK/m")
	printf '%-16s %7s series %9s bytes  text %6.1f ms  gzip %6.1f ms (%s bytes)  RSS %5.1f MB  peak %5.1f MB  maps %s MB  map_full %s\n' \
		"$name" "$series" "$bytes" "$(echo "$text * 1000" | bc)" "$(echo "$gz * 1000" | bc)" \
		"$(tail -1 "$WORK/g.$name" | awk '{ print $2 }')" "$(echo "$(kb VmRSS) / 1024" | bc -l)" \
		"$(echo "$(kb VmHWM) / 1024" | bc -l)" "$kmem" "$full"
}

# cgroups N: up to N cgroups, each running one task with an AVX save, a non-AVX save and a handled signal
made=0
cgroups() {
	for ((; made < $1; made++)); do
		mkdir "$TOP/c$made"
		sh -c 'echo $$ > "$0/cgroup.procs" && "$1/avxspin" 1 >/dev/null && exec "$1/sigloop" 1' \
			"$TOP/c$made" "$BUILD/tests" >/dev/null
	done
}
vms() {
	local i
	for ((i = ${#vmms[@]} - 1; i < $1; i++)); do
		"$BUILD/tests/testvmm" -name "guest=bench-$i" --runs 5,5,5,5,5,5,5,5 --hold-threads \
			--ready "$WORK/vm$i" >/dev/null 2>&1 &
		vmms+=($!)
		[ $((i % 25)) = 24 ] && wait_vms "$i"
	done
	wait_vms $(($1 - 1))
}
wait_vms() { for _ in $(seq 200); do [ -s "$WORK/vm$1" ] && return; sleep 0.1; done; }

# the daemon names every cgroup of the host: cgroups left behind by earlier runs cost it memory too
echo "host: $(($(find "$V2" -mindepth 1 -type d | wc -l) - 1)) cgroups besides the bench's, $(nproc) CPUs"
echo "stage            series, bytes, median of $SCRAPES scrapes each (text, then gzip), daemon memory"
stage idle
for n in 1000 3000 10000; do
	cgroups $n
	stage "${n}_cgroups"
done
if [ ! -c /dev/kvm ]; then
	echo "no /dev/kvm: the VM stages are skipped"
else
	for n in 60 "$VMS"; do
		vms "$n"
		stage "+${n}_vms"
	done
fi
ratio=$(echo "$(median <"$WORK/t.10000_cgroups") / $(median <"$WORK/t.1000_cgroups")" | bc -l)
printf 'scrape time 10k/1k cgroups: %.1fx\n' "$ratio"
