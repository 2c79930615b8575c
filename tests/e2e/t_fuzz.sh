#!/bin/bash
# t_fuzz.sh: each libFuzzer target (tests/fuzz/) for 20 s on its corpus; a crash fails, its input kept there.
. "$(dirname "$0")/lib.sh"

for f in "$ROOT"/tests/fuzz/fuzz_*.c; do
	t=$(basename "$f" .c)
	[ "$t" = fuzz_file ] && continue
	[ -x "$BUILD/fuzz/$t" ] || skip_or_fail "$BUILD/fuzz/$t not built (make $BUILD/fuzz/$t; needs clang's libFuzzer)"
done
BUILD=$BUILD "$ROOT/tests/fuzz/run.sh" "${FUZZ_TIME_TEST:-20}" || fail "a fuzz target crashed"
