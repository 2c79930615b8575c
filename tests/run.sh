#!/bin/bash
# run.sh: the whole suite: unit tests, then each end-to-end test; ends with "N passed, N failed".
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
passed=0 failed=0 skipped=0
failures=()

record() {	# record NAME STATUS
	case $2 in
	0) passed=$((passed + 1)); echo "ok   $1" ;;
	77) skipped=$((skipped + 1)); echo "skip $1" ;;
	*) failed=$((failed + 1)); failures+=("$1"); echo "FAIL $1" ;;
	esac
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	"$t" >"$BUILD/tests/$(basename "$t").log" 2>&1
	status=$?
	[ $status = 0 ] || cat "$BUILD/tests/$(basename "$t").log"
	record "unit/$(basename "$t")" $status
done

for t in "$ROOT"/tests/e2e/t_*.sh; do
	name=e2e/$(basename "$t" .sh)
	echo "---- $name"
	start=$(date +%s)
	timeout 600 bash "$t"
	status=$?
	echo "     ($(( $(date +%s) - start ))s)"
	record "$name" $status
done

[ ${#failures[@]} = 0 ] || printf 'failed: %s\n' "${failures[@]}"
if [ $skipped -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ $failed = 0 ]
