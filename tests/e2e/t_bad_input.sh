#!/bin/bash
# t_bad_input.sh: bad flags, configs, a busy port, no BPF permission, no BTF: one clear error, non-zero exit, nothing attached.
. "$(dirname "$0")/lib.sh"

require_root
our_programs() { bpftool prog show 2>/dev/null | grep -c 'name regs_deactivate' || true; }
before=$(our_programs)

# expect STATUS MESSAGE -- ARGS...: stderr at --log.level=error must be exactly "fpu_exporter: error: MESSAGE".
expect() {
	local want_status=$1 want="fpu_exporter: error: $2" status got
	shift 3
	"$@" >"$WORK/out" 2>"$WORK/err"
	status=$?
	got=$(cat "$WORK/err")
	[ "$status" = "$want_status" ] || fail "$*: exit $status, want $want_status (stderr: $got)"
	[ "$got" = "$want" ] || fail "$*: stderr
  got:  $got
  want: $want"
	[ "$(our_programs)" = "$before" ] || fail "$*: BPF programs left attached"
	note "ok: $want"
}

E=$EXPORTER
Q=--log.level=error
cat >"$WORK/tab.yaml" <<'YAML'
web:
	listen_address: ":1"
YAML
printf 'web:\n  listen_adress: ":9100"\n' >"$WORK/typo.yaml"
printf 'probes:\n  kvm: maybe\n' >"$WORK/type.yaml"
printf 'web:\n  listen_address: "127.0.0.1:9100"\n' >"$WORK/good.yaml"

expect 2 'unknown flag --bogus (see --help)' -- $E --bogus
expect 2 'flag --web.listen-address needs a value (see --help)' -- $E --web.listen-address
expect 2 'unexpected argument "extra" (see --help)' -- $E extra
expect 1 "$WORK/missing.yaml: No such file or directory" -- $E $Q --config.file="$WORK/missing.yaml"
expect 1 "$WORK/tab.yaml:2:1: found character that cannot start any token while scanning for the next token" \
	-- $E $Q --config.file="$WORK/tab.yaml"
expect 1 "$WORK/typo.yaml:2:3: unknown key \"listen_adress\" in section \"web\"" -- $E $Q --config.file="$WORK/typo.yaml"
expect 1 "$WORK/type.yaml:2:8: probes.kvm: expected true or false, found \"maybe\"" -- $E $Q --config.file="$WORK/type.yaml"
expect 1 'listen address "nonsense": expected host:port or :port' -- $E $Q --web.listen-address=nonsense
expect 1 'listen address "127.0.0.1:99999": bad port' -- $E $Q --web.listen-address=127.0.0.1:99999
expect 1 'log level "loud" is not one of error, warn, info, debug' -- $E --log.level=loud
expect 1 "$WORK/tab.yaml:2:1: found character that cannot start any token while scanning for the next token" \
	-- $E $Q --check-config --config.file="$WORK/tab.yaml"

# a TLS key that is not the certificate's
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=a -keyout "$WORK/a.key" -out "$WORK/a.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=b -keyout "$WORK/b.key" -out "$WORK/b.pem" 2>/dev/null
printf 'tls_server_config:\n  cert_file: a.pem\n  key_file: b.key\n' >"$WORK/mismatch.yaml"
expect 1 'tls_server_config: The certificate and the given key do not match.' \
	-- $E $Q --check-config --web.config.file="$WORK/mismatch.yaml"

# each found by --check-config, with one clear line
printf 'web:\n  timeout: 4294967296\n' >"$WORK/big_timeout.yaml"
expect 1 "$WORK/big_timeout.yaml:2:12: web.timeout: expected a duration such as 30s, 5m or 1h, found \"4294967296\"" \
	-- $E $Q --check-config --config.file="$WORK/big_timeout.yaml"
printf 'web:\n  timeout: 1s\nlog:\n  level: info\nweb:\n  timeout: 2s\n' >"$WORK/dup.yaml"
expect 1 "$WORK/dup.yaml:5:1: duplicate section \"web\"" -- $E $Q --check-config --config.file="$WORK/dup.yaml"
printf 'log:\n  level: "debug\\0junk"\n' >"$WORK/nul.yaml"
expect 1 "$WORK/nul.yaml:2:10: log.level: a NUL byte in the value" -- $E $Q --check-config --config.file="$WORK/nul.yaml"
{ printf 'web:\n  telemetry_path: "/'; head -c 10000000 /dev/zero | tr '\0' a; printf '"\n'; } >"$WORK/long.yaml"
expect 1 "$WORK/long.yaml:2:19: web.telemetry_path: longer than 4096 bytes" -- $E $Q --check-config --config.file="$WORK/long.yaml"
printf 'service:\n  user: no-such-user-here\n' >"$WORK/user.yaml"
expect 1 'service.user "no-such-user-here": no such user' -- $E $Q --check-config --config.file="$WORK/user.yaml"
mkfifo "$WORK/fifo.yaml"
expect 1 "$WORK/fifo.yaml: not a regular file" -- timeout 10 $E $Q --check-config --config.file="$WORK/fifo.yaml"
printf 'cgroups:\n  exclude: ["((((a{100}){100}){100}){100})"]\n' >"$WORK/regex.yaml"
expect 1 'cgroups.exclude[0] "((((a{100}){100}){100}){100})": too costly to compile (over 2s of CPU or 256 MB)' \
	-- $E $Q --check-config --config.file="$WORK/regex.yaml"

# --check-config on a good file, flags overriding it
$E --check-config --config.file="$WORK/good.yaml" --web.listen-address=:9101 >"$WORK/out" 2>&1 ||
	fail "--check-config rejected a good file: $(cat "$WORK/out")"
[ "$(cat "$WORK/out")" = "configuration OK" ] || fail "--check-config said: $(cat "$WORK/out")"
$E --version | grep -q '^fpu_exporter version [0-9]' || fail "--version"

# a port in use
port=$(free_port)
socat TCP-LISTEN:"$port",bind=127.0.0.1,reuseaddr,fork /dev/null &
at_exit "kill $!"
for _ in $(seq 50); do ss -ltnH "sport = :$port" | grep -q . && break; sleep 0.1; done
expect 1 "listening on 127.0.0.1:$port: Address already in use" -- $E $Q --web.listen-address=127.0.0.1:"$port"

# no permission to load BPF: an unprivileged user
port=$(free_port)
expect 1 'loading BPF programs: Operation not permitted (run as root, or with CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE)' \
	-- setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
	$E $Q --web.listen-address=127.0.0.1:"$port"

# no kernel BTF: hidden behind an empty tmpfs in a private mount namespace
expect 1 'no kernel BTF at /sys/kernel/btf/vmlinux (No such file or directory): a kernel built with CONFIG_DEBUG_INFO_BTF=y is required' \
	-- unshare --mount sh -c 'mount -t tmpfs none /sys/kernel/btf && exec "$@"' sh \
	$E $Q --web.listen-address=127.0.0.1:"$port"

# too little address space for a second copy of the kernel BTF (libbpf's, at load): the error
# says so, not just errno (ESRCH). The daemon needs about 21 MB before it reads the BTF once.
port=$(free_port)
btf_kb=$(( $(stat -c %s /sys/kernel/btf/vmlinux) / 1024 ))
expect 1 'loading BPF programs: No such process: libbpf: failed to find valid kernel BTF' \
	-- bash -c 'ulimit -v $(( 21000 + $0 * 3 / 2 )) && exec timeout 60 "$@"' "$btf_kb" \
	$E $Q --web.listen-address=127.0.0.1:"$port"

# the shipped configuration is valid as it stands
out=$($E --check-config --config.file="$ROOT/config/fpu_exporter.yaml" 2>&1) ||
	fail "config/fpu_exporter.yaml rejected: $out"
[ "$out" = "configuration OK" ] || fail "config/fpu_exporter.yaml: $out"

# ":port" on a kernel without IPv6 (ipv6.disable=1: socket(AF_INET6) fails with EAFNOSUPPORT, as a
# preloaded shim makes it here): IPv4 alone. In a fresh network namespace, whose only interface is lo.
[ -f "$BUILD/tests/noipv6.so" ] || fail "$BUILD/tests/noipv6.so is missing (make tools)"
port=$(free_port)
out=$(unshare --net sh -c '
	ip link set lo up
	LD_PRELOAD="$1" "$2" --log.level=error --web.listen-address=:"$3" >"$4" 2>&1 &
	for i in $(seq 100); do
		code=$(curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$3/healthz") && [ "$code" = 200 ] && break
		sleep 0.1
	done
	echo "$code $(ss -ltnH "sport = :$3" | awk "{ print \$4 }")"
	kill $!; wait $!' sh "$BUILD/tests/noipv6.so" "$E" "$port" "$WORK/noipv6.log")
[ "$out" = "200 0.0.0.0:$port" ] || fail "\":port\" without IPv6: $out ($(cat "$WORK/noipv6.log"))"
note "ok: \":port\" without IPv6 listens on 0.0.0.0:$port (in a private network namespace)"
