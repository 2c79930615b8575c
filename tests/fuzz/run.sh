#!/bin/bash
# run.sh SECONDS [TARGET...]: runs each libFuzzer target for SECONDS on its corpus in tests/fuzz/<target>/
# (seeds, and the crash inputs kept there as regression files); exits non-zero if any crashed.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
secs=${1:-20}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || for f in "$ROOT"/tests/fuzz/fuzz_*.c; do
	t=$(basename "$f" .c)
	[ "$t" = fuzz_file ] || targets+=("$t")
done
work=$(mktemp -d /tmp/fpu_fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
	corpus=$ROOT/tests/fuzz/$t
	mkdir -p "$corpus" "$work/$t"
	# new inputs go to the scratch corpus; crashes, leaks and timeouts stay in the repository's
	"$BUILD/fuzz/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$corpus/" "$work/$t" "$corpus" >"$work/$t.log" 2>&1
	status=$?
	stats=$(grep -E '^stat::number_of_executed_units' "$work/$t.log" | awk '{print $2}')
	if [ $status = 0 ]; then
		echo "  $t: ${stats:-?} inputs in ${secs}s, no crash"
	else
		failed+=("$t")
		grep -E 'ERROR|SUMMARY|Test unit written' "$work/$t.log" | head -n 5
		echo "  $t: crashed (exit $status); the input is kept in tests/fuzz/$t/"
	fi
done
[ ${#failed[@]} = 0 ] || { echo "fuzz targets that crashed: ${failed[*]}"; exit 1; }
