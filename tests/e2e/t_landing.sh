#!/bin/bash
# t_landing.sh: the live landing page in headless chromium under its CSP: VM rows with non-zero rates and an <svg> sparkline each; a screenshot in build/.
. "$(dirname "$0")/lib.sh"

require_kvm
CHROMIUM=$(command -v chromium || command -v chromium-browser) || skip_or_fail "chromium is not installed (make deps-test)"
HI=e2eland$$-hi LO=e2eland$$-lo
start_daemon
for vm in "$HI --runs 0,0 --rate 200" "$LO --runs 0 --rate 50"; do
	set -- $vm
	"$BUILD/tests/testvmm" -name "guest=$1" "${@:2}" --ready "$WORK/ready.$1" >"$WORK/vmm.$1" 2>&1 &
	at_exit "kill $! 2>/dev/null; wait $! 2>/dev/null"
done
for _ in $(seq 100); do [ -s "$WORK/ready.$HI" ] && [ -s "$WORK/ready.$LO" ] && break; sleep 0.1; done
[ -s "$WORK/ready.$HI" ] && [ -s "$WORK/ready.$LO" ] || fail "the test VMMs did not get ready"

# The CSP allows exactly the page's nonce'd script and style.
curl -sfD "$WORK/headers" -o "$WORK/page.html" "http://127.0.0.1:$PORT/" || fail "GET / failed"
csp=$(grep -i '^content-security-policy:' "$WORK/headers" | tr -d '\r')
nonce=$(grep -o '<script nonce="[0-9a-f]*"' "$WORK/page.html" | grep -o '[0-9a-f]\{32\}')
note "CSP: ${csp#*: }"
[ -n "$nonce" ] && echo "$csp" | grep -q "script-src 'nonce-$nonce';" ||
	fail "the CSP does not allow the page's script nonce"
echo "$csp" | grep -q "default-src 'none'" || fail "the CSP does not default to none"
! echo "$csp" | grep -q "unsafe-inline" || fail "the CSP allows unsafe-inline"
[ "$(grep -c '<script' "$WORK/page.html")" = 1 ] && ! grep -q ' on[a-z]*=' "$WORK/page.html" ||
	fail "script outside the one nonce'd element"
grep -q 'href="/metrics"' "$WORK/page.html" && grep -q 'kvm:kvm_fpu: attached' "$WORK/page.html" ||
	fail "the page lost its links or probe status"

# The history samples every 10 s at most: three samples give two rates for each VM.
for _ in 1 2 3; do scrape /status >/dev/null; sleep 10.5; done

chrome() {
	"$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
		--disable-component-update --disable-sync --no-first-run --user-data-dir="$WORK/chrome.$1" \
		"${@:2}" "http://127.0.0.1:$PORT/" 2>"$WORK/chrome.$1.err"
}
# The budget runs the page's timers: its script redraws the tables from /status.
chrome dom --virtual-time-budget=16000 --dump-dom >"$WORK/dom.html" || fail "chromium --dump-dom failed: $(tail -3 "$WORK/chrome.dom.err")"
grep -q 'id="updated">updated ' "$WORK/dom.html" ||
	{ grep -i 'security\|csp\|refused' "$WORK/chrome.dom.err" | head -3; fail "the page's script did not redraw from /status (blocked?)"; }
for vm in "$HI" "$LO"; do
	row=$(tr '\n' ' ' <"$WORK/dom.html" | grep -o "<tr><td>$vm</td>.*" | sed 's|</tr>.*||')
	rate=$(echo "$row" | grep -o 'class="num">[0-9.]*<' | grep -o '[0-9.]\+')
	note "$vm: rate $rate/s, $(echo "$row" | grep -o '<svg' | wc -l) svg"
	[ -n "$rate" ] && awk -v r="$rate" 'BEGIN { exit !(r > 0) }' || fail "$vm has no non-zero rate in the DOM"
	echo "$row" | grep -q '<svg[^>]*class="spark".*<polyline[^>]* points="[0-9]' ||
		fail "$vm has no sparkline"
done
mkdir -p "$BUILD"
chrome shot --window-size=1000,800 --virtual-time-budget=6000 --screenshot="$BUILD/landing.png" >/dev/null ||
	fail "chromium --screenshot failed"
[ -s "$BUILD/landing.png" ] || fail "no screenshot"
note "screenshot: $BUILD/landing.png"
exit 0
