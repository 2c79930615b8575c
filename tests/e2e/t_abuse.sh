#!/bin/bash
# t_abuse.sh: hostile clients on loopback (idle floods, re-openers, header tricklers, half-sent requests
# across reloads, SIGHUP storms): a scraper is served within a second, fds and memory stay bounded, the listener stays.
. "$(dirname "$0")/lib.sh"

# hostile MODE N SECONDS: N sockets to the daemon, for SECONDS (one process, perl-base's IO modules).
#   idle:    open N, hold them, say "open N" in $WORK/hostile.ready
#   reopen:  the same, and open a new one whenever the daemon closes one
#   trickle: one request, a header line every 2 s, N lines at most; prints "closed after K lines, B bytes"
#            when the daemon closes it, "open after K lines" if it never did
hostile() {
	exec perl -e '
use strict; use warnings; use IO::Socket::INET; use IO::Select; use Time::HiRes qw(time sleep);
my ($mode, $port, $n, $secs, $ready) = @ARGV;
$SIG{PIPE} = "IGNORE";
my $sel = IO::Select->new;
my $opened = 0;
sub open1 {
	my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 2) or return;
	$sel->add($s); $opened++;
}
if ($mode eq "trickle") {
	my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") or die "connect: $!";
	syswrite($s, "GET /metrics HTTP/1.1\r\n");
	my ($lines, $bytes, $buf) = (0, 0, "");
	for my $i (1 .. $n) {
		my $sel1 = IO::Select->new($s);
		if ($sel1->can_read(2)) {
			my $r = sysread($s, $buf, 65536);
			if (!$r) { print "closed after $lines lines, $bytes bytes\n"; exit 0; }
			$bytes += $r; redo;
		}
		syswrite($s, "X-Line-$i: slow\r\n") or do { print "closed after $lines lines, $bytes bytes\n"; exit 0; };
		$lines++;
	}
	print "open after $lines lines\n"; exit 0;
}
open1() for 1 .. $n;
open(my $f, ">", $ready) or die; print $f "open $opened\n"; close $f;
my $end = time + $secs;
while (time < $end) {
	for my $s ($sel->can_read(0.2)) {
		my $buf; my $r = sysread($s, $buf, 4096);
		next if $r;
		$sel->remove($s); close $s;
		open1() if $mode eq "reopen";
	}
}' "$@" "$WORK/hostile.ready"
}
# hostile_start MODE N SECONDS: in the background, back once its sockets are open
hostile_start() {
	rm -f "$WORK/hostile.ready"
	hostile "$1" "$PORT" "$2" "$3" &
	HOSTILE=$!
	at_exit "kill $HOSTILE 2>/dev/null"
	for _ in $(seq 100); do [ -s "$WORK/hostile.ready" ] && break; sleep 0.1; done
	[ "$(cat "$WORK/hostile.ready")" = "open $2" ] || fail "hostile $1: $(cat "$WORK/hostile.ready" 2>/dev/null)"
}
# served WHAT: a scrape answers 200 within a second, 3 times
served() {
	local code
	for i in 1 2 3; do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$PORT/metrics")
		[ "$code" = 200 ] || fail "scrape $i while $1: $code (not served within a second)"
	done
}
fds() { ls /proc/$DAEMON_PID/fd | wc -l; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' /proc/$DAEMON_PID/status; }
listeners() { ss -ltnH "sport = :$PORT" | wc -l; }
# wait_log PATTERN N: until the daemon's log has N lines matching PATTERN
wait_log() {
	for _ in $(seq 100); do [ "$(grep -c "$1" "$WORK/daemon.log")" = "$2" ] && return 0; sleep 0.1; done
	fail "log: want $2 lines matching \"$1\", have $(grep -c "$1" "$WORK/daemon.log")"
}

ulimit -n 8192
printf 'web:\n  timeout: 3s\n' >"$WORK/config.yaml"
start_daemon --config.file="$WORK/config.yaml"
scrape >/dev/null
fds0=$(fds)
rss0=$(rss_kb)

# --- requests with a body are answered without reading it
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -X POST -d hello=world "http://127.0.0.1:$PORT/metrics")
[ "$code" = 405 ] || fail "POST with a body: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 -X GET -d hello=world "http://127.0.0.1:$PORT/metrics")
[ "$code" = 400 ] || fail "GET with a body: $code"
note "POST with a body: 405; GET with a body: 400"

# --- 100 malformed requests write nothing to the log at the default level
lines=$(wc -l <"$WORK/daemon.log")
for _ in $(seq 50); do
	printf 'GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n' | socat -t 1 - TCP:127.0.0.1:$PORT >/dev/null
	printf 'GET / HTTP/9.9\r\nHost: x\r\n\r\n' | socat -t 1 - TCP:127.0.0.1:$PORT >/dev/null
done
code=$(printf 'GET / HTTP/9.9\r\nHost: x\r\n\r\n' | socat -t 1 - TCP:127.0.0.1:$PORT | head -n 1 | tr -d '\r')
[ "$code" = "HTTP/1.1 505 HTTP Version Not Supported" ] || fail "a malformed request answered: $code"
[ "$(wc -l <"$WORK/daemon.log")" = "$lines" ] ||
	fail "malformed requests were logged: $(tail -n 3 "$WORK/daemon.log")"
note "101 malformed requests (400, 505): no log line at the default level"

# --- 1,000 idle sockets (the defaults serve 64 at once)
hostile_start idle 1000 5
served "1,000 idle sockets were open"
[ "$(fds)" -le $((fds0 + 64 + 16)) ] || fail "$(fds) fds with 1,000 idle sockets (at rest: $fds0)"
note "1,000 idle sockets: scrapes answered within a second, $(fds) fds (at rest $fds0)"
kill $HOSTILE; wait $HOSTILE 2>/dev/null

# --- 200 sockets re-opened as soon as they are closed
hostile_start reopen 200 5
served "200 sockets were re-opened as soon as closed"
note "200 re-opened idle sockets: scrapes answered within a second"
kill $HOSTILE; wait $HOSTILE 2>/dev/null

# --- a header line every 2 s: the request must be whole within web.timeout (3 s)
out=$(hostile trickle "$PORT" 6 0)
[ "$out" = "closed after 1 lines, 0 bytes" ] || fail "a client trickling header lines: $out"
note "a header line every 2 s: closed at web.timeout, after 1 line, nothing answered"

# --- fds and memory back at rest once the attackers are gone
for _ in $(seq 50); do [ "$(fds)" = "$fds0" ] && break; sleep 0.1; done
[ "$(fds)" = "$fds0" ] || fail "$(fds) fds once the attackers left, $fds0 before"
[ "$(rss_kb)" -le $((rss0 + 16384)) ] || fail "resident memory grew from $rss0 kB to $(rss_kb) kB"
note "after the attacks: $(fds) fds as before, $(rss_kb) kB resident ($rss0 kB before)"

# --- a request half sent when a reload comes: answered, by the same server or by the old one
# half_sent_across_reload N: sends half a request, reloads, waits for the Nth "configuration reloaded",
# sends the rest; the response's status line and Connection header go to $WORK/resp
half_sent_across_reload() {
	exec 3<>/dev/tcp/127.0.0.1/$PORT
	printf 'GET /healthz HTTP/1.1\r\nHost: fpu\r\n' >&3
	sleep 0.2
	kill -HUP $DAEMON_PID
	wait_log 'configuration reloaded' "$1"
	printf '\r\n' >&3
	timeout 2 sed -n '/^\r$/q; /^HTTP\//p; /^[Cc]onnection:/p' <&3 | tr -d '\r' >"$WORK/resp"
	exec 3<&-
}
half_sent_across_reload 1
[ "$(head -n 1 "$WORK/resp")" = "HTTP/1.1 200 OK" ] || fail "half-sent request, reload without web changes: $(cat "$WORK/resp")"
grep -q 'HTTP server restarted' "$WORK/daemon.log" && fail "a reload without web changes restarted the HTTP server"
printf 'web:\n  timeout: 4s\n' >"$WORK/config.yaml"
half_sent_across_reload 2
[ "$(cat "$WORK/resp")" = "HTTP/1.1 200 OK
Connection: close" ] || fail "half-sent request, reload with a new web.timeout: $(cat "$WORK/resp")"
wait_log 'HTTP server restarted with the new web settings' 1
[ "$(listeners)" = 1 ] || fail "$(listeners) listeners after a reload with new web settings"
note "a half-sent request is answered across reloads: kept alive without web changes; with, by the old server, then closed"

# --- 200 SIGHUPs 10 ms apart while 300 scrapes run back to back, each on a new connection
( for _ in $(seq 200); do kill -HUP $DAEMON_PID; sleep 0.01; done ) &
storm=$!
urls=()
for _ in $(seq 300); do urls+=("http://127.0.0.1:$PORT/healthz"); done
curl -s -H 'Connection: close' -o /dev/null -w '%{http_code}\n' "${urls[@]}" >"$WORK/codes"
wait $storm
[ "$(grep -c '^200$' "$WORK/codes")" = 300 ] || fail "scrapes in a SIGHUP storm: $(sort "$WORK/codes" | uniq -c | tr '\n' ' ')"
kill -0 $DAEMON_PID || fail "the daemon died in the SIGHUP storm"
[ "$(listeners)" = 1 ] || fail "$(listeners) listeners after the SIGHUP storm"
note "200 SIGHUPs 10 ms apart: 300 of 300 scrapes answered, 1 listener"

# --- bad, good and TLS-changing reloads keep the listener
refused=$(grep -c 'reload refused' "$WORK/daemon.log")
reloaded=$(grep -c 'configuration reloaded' "$WORK/daemon.log")
printf 'web:\n\ttimeout: 4s\n' >"$WORK/config.yaml"
kill -HUP $DAEMON_PID
wait_log 'reload refused' $((refused + 1))
[ "$(listeners)" = 1 ] || fail "$(listeners) listeners after a refused reload"
served "a YAML error was refused"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -keyout "$WORK/tls.key" -out "$WORK/tls.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other -keyout "$WORK/other.key" -out /dev/null 2>/dev/null
printf 'tls_server_config:\n  cert_file: tls.pem\n  key_file: tls.key\n' >"$WORK/web.yaml"
printf 'tls_server_config:\n  cert_file: tls.pem\n  key_file: other.key\n' >"$WORK/web_bad.yaml"
printf 'web:\n  timeout: 4s\n  config_file: %s\n' "$WORK/web.yaml" >"$WORK/config.yaml"
kill -HUP $DAEMON_PID
wait_log 'configuration reloaded' $((reloaded + 1))
[ "$(listeners)" = 1 ] || fail "$(listeners) listeners after a reload to TLS"
code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 1 "https://127.0.0.1:$PORT/metrics")
[ "$code" = 200 ] || fail "HTTPS scrape after a reload to TLS: $code"
printf 'web:\n  timeout: 4s\n  config_file: %s\n' "$WORK/web_bad.yaml" >"$WORK/config.yaml"
kill -HUP $DAEMON_PID
wait_log 'reload refused' $((refused + 2))
[ "$(listeners)" = 1 ] || fail "$(listeners) listeners after a refused TLS reload"
code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 1 "https://127.0.0.1:$PORT/metrics")
[ "$code" = 200 ] || fail "HTTPS scrape after a refused TLS reload: $code"
printf 'web:\n  timeout: 4s\n' >"$WORK/config.yaml"
kill -HUP $DAEMON_PID
wait_log 'configuration reloaded' $((reloaded + 2))
[ "$(listeners)" = 1 ] || fail "$(listeners) listeners after a reload back to plain HTTP"
served "TLS was turned off"
note "YAML error refused, to TLS, a key that is not the certificate's refused, back to plain: 1 listener, served each time"
for _ in $(seq 50); do [ "$(fds)" = "$fds0" ] && break; sleep 0.1; done
[ "$(fds)" = "$fds0" ] || fail "$(fds) fds after the reloads, $fds0 at the start"
note "after the reloads: $(fds) fds, as at the start"
