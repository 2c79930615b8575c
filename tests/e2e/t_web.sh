#!/bin/bash
# t_web.sh: TLS with a test CA, basic auth (bcrypt), OpenMetrics and gzip negotiation, a slow client.
. "$(dirname "$0")/lib.sh"

# --- a test CA and a server certificate for 127.0.0.1
cd "$WORK"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=fpu-test-ca -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext \
	-out server.pem 2>/dev/null || fail "openssl could not make the test certificate"
cd - >/dev/null
# bcrypt (cost 10) of "s3cret" for alice, of "other" for bob
cat >"$WORK/web.yaml" <<'YAML'
tls_server_config:
  cert_file: server.pem
  key_file: server.key
basic_auth_users:
  alice: $2b$10$iiHGBtK/.5RIA/AUb/i4EuFzd8gywGyf.dTDPNdiW2/bZBgY13Miy
  bob: $2b$10$tcqXskXy3lge6Q3Peb4QUumL89CzaELw.JZ1RxgVIOovv8e9CEbFu
YAML
require_root
PORT=$(free_port)
# room for the 100 clients at a time of the bad-password flood below (t_abuse floods past the limit)
printf 'web:\n  max_connections: 128\n' >"$WORK/config.yaml"
"$EXPORTER" --web.listen-address=127.0.0.1:$PORT --web.config.file="$WORK/web.yaml" --config.file="$WORK/config.yaml" \
	>"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
URL=https://127.0.0.1:$PORT
C=(curl -s --cacert "$WORK/ca.pem" -o /dev/null -w '%{http_code}')
for _ in $(seq 100); do [ "$("${C[@]}" "$URL/healthz")" = 401 ] && break; sleep 0.1; done

code=$("${C[@]}" "$URL/metrics");                     [ "$code" = 401 ] || fail "no credentials: $code"
code=$("${C[@]}" -u alice:wrong "$URL/metrics");      [ "$code" = 401 ] || fail "wrong password: $code"
code=$("${C[@]}" -u mallory:s3cret "$URL/metrics");   [ "$code" = 401 ] || fail "unknown user: $code"
code=$("${C[@]}" -u bob:s3cret "$URL/metrics");       [ "$code" = 401 ] || fail "alice's password for bob: $code"
code=$("${C[@]}" -u alice:s3cret "$URL/metrics");     [ "$code" = 200 ] || fail "alice: $code"
code=$("${C[@]}" -u bob:other "$URL/healthz");        [ "$code" = 200 ] || fail "bob: $code"
curl -s -o /dev/null "http://127.0.0.1:$PORT/metrics" && fail "plain HTTP answered on a TLS port"
curl -s -I --cacert "$WORK/ca.pem" "$URL/metrics" | grep -qi '^www-authenticate: Basic realm="fpu_exporter"' ||
	fail "no WWW-Authenticate header on 401"
note "TLS with the test CA; basic auth: 401 without, wrong, unknown; 200 for alice and bob"
# a NUL in the password does not cut it: "s3cret\0junk" is not alice's password
code=$("${C[@]}" -H "Authorization: Basic $(printf 'alice:s3cret\0junk' | base64)" "$URL/metrics")
[ "$code" = 401 ] || fail "a password cut at a NUL byte: $code"

# --- 300 bad-password requests, 100 at a time: the (verified, remembered) scraper is served within a second
bad=()
for _ in $(seq 300); do bad+=(-o /dev/null "$URL/metrics"); done
"${C[@]}" -u alice:s3cret "$URL/metrics" >/dev/null
curl -s --cacert "$WORK/ca.pem" -u alice:wrong --parallel --parallel-max 100 -w '%{http_code}\n' \
	"${bad[@]}" >"$WORK/bad_codes" 2>/dev/null &
flood=$!
for i in 1 2 3 4 5; do
	code=$("${C[@]}" --max-time 1 -u alice:s3cret "$URL/metrics")
	[ "$code" = 200 ] || fail "scrape $i during the bad-password flood: $code (not served within a second)"
done
wait $flood
[ "$(grep -c '^401$\|^429$' "$WORK/bad_codes")" = 300 ] ||
	fail "bad passwords answered: $(sort "$WORK/bad_codes" | uniq -c | tr '\n' ' ')"
grep -q '^200$' "$WORK/bad_codes" && fail "a bad password was let in"
note "300 bad passwords, 100 at a time: $(grep -c '^401$' "$WORK/bad_codes") x 401, $(grep -c '^429$' "$WORK/bad_codes") x 429 (failures rate-limited); the scraper served within a second 5 times"

A=(curl -sf --cacert "$WORK/ca.pem" -u alice:s3cret)
# --- text format
"${A[@]}" -D "$WORK/h" "$URL/metrics" >"$WORK/text" || fail "scrape"
grep -qi '^content-type: text/plain; version=0.0.4; charset=utf-8' "$WORK/h" || fail "text content type"
promtool check metrics <"$WORK/text" || fail "promtool on the text format"
# --- OpenMetrics when asked for
"${A[@]}" -D "$WORK/h" -H 'Accept: application/openmetrics-text; version=1.0.0,text/plain;q=0.5' \
	"$URL/metrics" >"$WORK/om" || fail "OpenMetrics scrape"
grep -qi '^content-type: application/openmetrics-text; version=1.0.0; charset=utf-8' "$WORK/h" ||
	fail "OpenMetrics content type: $(grep -i content-type "$WORK/h")"
[ "$(tail -n 1 "$WORK/om")" = "# EOF" ] || fail "OpenMetrics does not end in # EOF"
grep -q '^# TYPE fpu_regs_deactivated counter$' "$WORK/om" || fail "OpenMetrics counter TYPE keeps _total"
grep -q '^fpu_regs_deactivated_total{' "$WORK/om" || fail "OpenMetrics counter samples lack _total"
grep -q '^# TYPE [a-z_]*_total ' "$WORK/om" && fail "an OpenMetrics TYPE line names a _total family"
# promtool here reads only the 0.0.4 text format: give the OpenMetrics body back its _total family
# names and no # EOF, and it must pass and declare the same families as the text format. (A real
# Prometheus, which asks for OpenMetrics, parses it in t_dashboard.)
awk '/^# HELP / { help = $0; next }
	/^# TYPE / { n = $3; if ($4 == "counter") n = n "_total"; sub(/^# HELP [^ ]+/, "# HELP " n, help)
		print help; print "# TYPE " n " " $4; next }
	/^# EOF$/ { next } { print }' "$WORK/om" >"$WORK/om_as_text"
promtool check metrics <"$WORK/om_as_text" || fail "promtool on the OpenMetrics body"
families() { grep '^# TYPE ' "$1" | sort; }
diff <(families "$WORK/text") <(families "$WORK/om_as_text") >/dev/null ||
	fail "OpenMetrics and text declare different families: $(diff <(families "$WORK/text") <(families "$WORK/om_as_text"))"
# --- gzip when accepted
"${A[@]}" -D "$WORK/h" -H 'Accept-Encoding: gzip' "$URL/metrics" >"$WORK/gz" || fail "gzip scrape"
grep -qi '^content-encoding: gzip' "$WORK/h" || fail "no Content-Encoding: gzip"
gunzip -c "$WORK/gz" >"$WORK/gunzipped" || fail "the gzip body does not decompress"
promtool check metrics <"$WORK/gunzipped" || fail "promtool on the gunzipped body"
"${A[@]}" -D "$WORK/h" -H 'Accept-Encoding: gzip;q=0' "$URL/metrics" >/dev/null
grep -qi '^content-encoding' "$WORK/h" && fail "gzip sent though declined"
note "text, OpenMetrics and gzip negotiated and parsed"
# --- media ranges and q-values, not substrings
ctype() { "${A[@]}" -o /dev/null -D - -H "Accept: $1" "$URL/metrics" | tr -d '\r' | sed -n 's/^[Cc]ontent-[Tt]ype: //p'; }
[ "$(ctype 'application/openmetrics-text; q=0')" = "text/plain; version=0.0.4; charset=utf-8" ] ||
	fail "OpenMetrics declined with q=0: served $(ctype 'application/openmetrics-text; q=0')"
[ "$(ctype 'application/openmetrics-text;q=0.9, text/plain;q=0.1')" = \
	"application/openmetrics-text; version=1.0.0; charset=utf-8" ] || fail "OpenMetrics preferred by q: text served"
[ "$(ctype '*/*')" = "text/plain; version=0.0.4; charset=utf-8" ] || fail "*/* served $(ctype '*/*')"
coding() { "${A[@]}" -o /dev/null -D - -H "Accept-Encoding: $1" "$URL/metrics" | tr -d '\r' | sed -n 's/^[Cc]ontent-[Ee]ncoding: //p'; }
[ "$(coding 'gzip;q=0.5')" = gzip ] || fail "gzip;q=0.5: no gzip"
[ "$(coding 'gzip; q=0')" = "" ] || fail "gzip; q=0: gzip sent"
[ "$(coding 'notgzip')" = "" ] || fail "notgzip: gzip sent"
"${A[@]}" -o /dev/null -D "$WORK/h" "$URL/metrics"
[ "$(tr -d '\r' <"$WORK/h" | grep -i '^vary:')" = "Vary: Accept, Accept-Encoding" ] ||
	fail "Vary: $(grep -i '^vary:' "$WORK/h")"
curl -s --cacert "$WORK/ca.pem" -u alice:s3cret -X DELETE -o /dev/null -D "$WORK/h" "$URL/metrics"
[ "$(tr -d '\r' <"$WORK/h" | sed -n '1p;/^[Aa]llow:/p')" = "HTTP/1.1 405 Method Not Allowed
Allow: GET, HEAD" ] || fail "405 without Allow: $(cat "$WORK/h")"
# HEAD: the GET headers, not a scrape
scrapes() { "${A[@]}" "$URL/metrics" | awk '$1 == "fpu_exporter_scrapes_total{format=\"text\"}" { print $2 }'; }
before=$(scrapes)
"${A[@]}" -I -o "$WORK/h" "$URL/metrics"
after=$(scrapes)
[ $((after - before)) = 1 ] || fail "a HEAD counted as a scrape: scrapes_total went from $before to $after over HEAD and GET"
grep -qi '^content-type: text/plain; version=0.0.4' "$WORK/h" || fail "HEAD content type: $(grep -i content-type "$WORK/h")"
note "q=0 declines, q orders, */* is text, gzip;q=0.5 and not notgzip; Vary: Accept, Accept-Encoding; Allow on 405; HEAD renders nothing"
# --- keep-alive: two scrapes on one TLS connection
"${A[@]}" -D "$WORK/h" -o /dev/null -o /dev/null -w '%{num_connects} ' "$URL/metrics" "$URL/metrics" >"$WORK/nc"
[ "$(cat "$WORK/nc")" = "1 0 " ] || fail "connections made for two scrapes: $(cat "$WORK/nc"), want 1 then 0"
grep -qi '^connection: close' "$WORK/h" && fail "a scrape answered with Connection: close"
note "keep-alive: the second scrape reused the TLS connection"

# --- a slow client (one byte a second) does not hold up other scrapes
(
	exec 3<>/dev/tcp/127.0.0.1/$PORT
	for b in G E T ' ' /; do printf '%s' "$b" >&3; sleep 1; done
) &
slow=$!
at_exit "kill $slow 2>/dev/null"
sleep 0.5
for i in 1 2 3 4 5; do
	"${A[@]}" --max-time 10 -o /dev/null "$URL/metrics" || fail "scrape $i failed while a slow client was connected"
done
kill -0 $slow 2>/dev/null || fail "the slow client was done before the scrapes"
note "5 scrapes answered while a slow client trickled bytes"

# --- reloads: a refused one leaves the server as it was, the next ones work
listeners() { ss -ltnH "sport = :$PORT" | wc -l; }
# wait_log PATTERN N: until the daemon's log has N lines matching PATTERN
wait_log() {
	for _ in $(seq 100); do [ "$(grep -c "$1" "$WORK/daemon.log")" = "$2" ] && return 0; sleep 0.1; done
	fail "log: want $2 lines matching \"$1\", have $(grep -c "$1" "$WORK/daemon.log")"
}
serial() { openssl s_client -connect 127.0.0.1:$PORT </dev/null 2>/dev/null | openssl x509 -noout -serial; }
cp "$WORK/server.key" "$WORK/server.key.good"
openssl req -newkey rsa:2048 -nodes -subj /CN=other -keyout "$WORK/other.key" -out /dev/null 2>/dev/null
[ "$(listeners)" = 1 ] || fail "$(listeners) listeners before the reloads"
cp "$WORK/other.key" "$WORK/server.key"
kill -HUP $DAEMON_PID
wait_log 'reload refused, the old configuration stays' 1
[ "$(listeners)" = 1 ] || fail "$(listeners) listeners after a reload with a key that is not the certificate's"
grep -q 'reload refused.*tls_server_config: The certificate and the given key do not match' "$WORK/daemon.log" ||
	fail "the refusal does not say why: $(grep 'reload refused' "$WORK/daemon.log")"
code=$("${C[@]}" -u alice:s3cret "$URL/metrics");     [ "$code" = 200 ] || fail "after the refused reload: $code"
echo junk >"$WORK/server.key"
kill -HUP $DAEMON_PID
wait_log 'reload refused, the old configuration stays' 2
[ "$(listeners)" = 1 ] || fail "$(listeners) listeners after a reload with an invalid PEM key"
code=$("${C[@]}" -u alice:s3cret "$URL/metrics");     [ "$code" = 200 ] || fail "after the second refused reload: $code"
cp "$WORK/server.key.good" "$WORK/server.key"
kill -HUP $DAEMON_PID
wait_log 'configuration reloaded' 1
[ "$(listeners)" = 1 ] || fail "$(listeners) listeners after a good reload"
code=$("${C[@]}" -u alice:s3cret "$URL/metrics");     [ "$code" = 200 ] || fail "after a good reload: $code"
note "a key that is not the certificate's, then an invalid PEM: refused, 1 listener, scrapes answered; then a good reload"
# a new certificate (and key): served from the next connection on
old_serial=$(serial)
cd "$WORK"
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server2.csr 2>/dev/null
openssl x509 -req -in server2.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext \
	-out server.pem 2>/dev/null || fail "openssl could not make the second certificate"
cd - >/dev/null
new_serial=$(openssl x509 -noout -serial -in "$WORK/server.pem")
[ "$old_serial" != "$new_serial" ] || fail "the test made a certificate with the same serial"
kill -HUP $DAEMON_PID
wait_log 'configuration reloaded' 2
[ "$(listeners)" = 1 ] || fail "$(listeners) listeners after a TLS-changing reload"
[ "$(serial)" = "$new_serial" ] || fail "after the reload the server shows $(serial), want $new_serial"
code=$("${C[@]}" -u alice:s3cret "$URL/metrics");     [ "$code" = 200 ] || fail "after a TLS-changing reload: $code"
kill -0 $DAEMON_PID || fail "the daemon died in the reloads: $(tail -n 3 "$WORK/daemon.log")"
note "a new certificate: served after the reload, 1 listener, the daemon alive"

# --- service.user empty: the dedicated user where it exists, else uid 0 said aloud
if id fpu_exporter >/dev/null 2>&1; then
	grep -q 'running as user fpu_exporter' "$WORK/daemon.log" || fail "the fpu_exporter user exists but was not used"
else
	grep -q 'no user "fpu_exporter" and service.user is empty: staying uid 0' "$WORK/daemon.log" ||
		fail "staying uid 0 without a word"
fi
note "service.user empty: $(grep -o 'running as user [a-z_]*\|staying uid 0' "$WORK/daemon.log")"
