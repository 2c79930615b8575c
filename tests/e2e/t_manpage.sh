#!/bin/bash
# t_manpage.sh: man/fpu_exporter.1 renders without a warning, names every flag and configuration key, and make install/uninstall carry it.
. "$(dirname "$0")/lib.sh"

PAGE=$ROOT/man/fpu_exporter.1
command -v man >/dev/null && command -v groff >/dev/null || skip_or_fail "man-db and groff-base are not installed"
out=$(groff -ww -z -man "$PAGE" 2>&1) || fail "groff failed: $out"
[ -z "$out" ] || fail "groff -ww warns: $out"
out=$(MANWIDTH=80 man --warnings -l "$PAGE" 2>&1 >"$WORK/page.txt") || fail "man -l failed: $out"
[ -z "$out" ] || fail "man --warnings: $out"
[ "$(head -1 "$WORK/page.txt" | tr -s ' ')" = "FPU_EXPORTER(1) User Commands FPU_EXPORTER(1)" ] ||
	fail "unexpected header: $(head -1 "$WORK/page.txt")"
awk 'length > 80 { bad = 1; print } END { exit bad }' "$WORK/page.txt" >&2 || fail "lines wider than MANWIDTH=80"
note "man -l and groff -ww: no warnings, $(wc -l <"$WORK/page.txt") lines at 80 columns"

# Every flag the daemon knows (its --help) and every key of the default configuration is in the page.
[ -x "$EXPORTER" ] || fail "build $EXPORTER first (make)"
flags=$("$EXPORTER" --help | grep -o -- '--[a-z][a-z.-]*' | sort -u)
[ "$(wc -l <<<"$flags")" -ge 8 ] || fail "too few flags in --help: $flags"
for f in $flags; do
	grep -qF -- "$f" "$WORK/page.txt" || fail "flag $f is not in the man page"
done
keys=$(awk '/^[a-z_]+:/ { s = substr($1, 1, length($1) - 1); next }
	/^  [a-z_]+:/ { k = $1; sub(/:$/, "", k); print s "." k }' "$ROOT/config/fpu_exporter.yaml")
[ "$(wc -l <<<"$keys")" -ge 20 ] || fail "too few keys read from the configuration: $keys"
for k in $keys; do
	grep -qF -- "$k" "$WORK/page.txt" || fail "configuration key $k is not in the man page"
done
note "all $(wc -l <<<"$flags") flags and $(wc -l <<<"$keys") configuration keys are described"

D=$WORK/dest
make -s -C "$ROOT" install DESTDIR="$D" PREFIX=/usr >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; fail "make install"; }
[ -f "$D/usr/share/man/man1/fpu_exporter.1.gz" ] || fail "make install did not install the man page"
cmp -s <(gzip -dc "$D/usr/share/man/man1/fpu_exporter.1.gz") "$PAGE" || fail "the installed page differs from the source"
make -s -C "$ROOT" uninstall DESTDIR="$D" PREFIX=/usr >/dev/null || fail "make uninstall"
[ -e "$D/usr/share/man/man1/fpu_exporter.1.gz" ] && fail "make uninstall left the man page"
note "make install puts it in PREFIX/share/man/man1 (gzipped), make uninstall removes it"
