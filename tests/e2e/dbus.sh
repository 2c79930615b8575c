# dbus.sh: a private dbus-daemon standing in for the system bus, and tests/workloads/fake_machined on it.
# Sourced by end-to-end tests; defines functions only. Each returns non-zero with a message on stderr on failure;
# waits are bounded by DBUS_WAIT_TENTHS (default 100, i.e. 10 s).
#
#	dbus_start DIR				bus at unix:path=DIR/bus; exports DBUS_SYSTEM_BUS_ADDRESS, DBUS_PID
#	fake_machined_start DIR BINARY [--machine NAME,CLASS,SERVICE,LEADER_PID,UNIT,UUID]...
#						exports FAKE_MACHINED_PID; commands go through DIR/machined.in
#	fake_machined_cmd DIR 'add SPEC'|'remove NAME'	waits for its "ok"
#	dbus_stop DIR				stops both; safe to call twice

_dbus_err() { echo "dbus.sh: $*" >&2; return 1; }

# _dbus_alive PID: the process exists and is not a zombie.
_dbus_alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat:0:1}" != Z ]
}

# _dbus_kill PIDFILE: TERM, then KILL after 5 s, then reap if it is our child.
_dbus_kill() {
	local pid i
	[ -f "$1" ] || return 0
	pid=$(cat "$1")
	rm -f "$1"
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		_dbus_alive "$pid" || break
		sleep 0.1
	done
	! _dbus_alive "$pid" || kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	return 0
}

dbus_start() {
	local dir=${1:?dbus_start DIR} i
	command -v dbus-daemon >/dev/null || _dbus_err "dbus-daemon not found (apt-get install dbus-daemon)" || return
	mkdir -p "$dir" || return
	dir=$(cd "$dir" && pwd)
	[ ${#dir} -lt 100 ] || _dbus_err "$dir/bus: too long for a unix socket path" || return
	rm -f "$dir/bus"
	# everything is allowed; <allow user="*"/> also lets in an exporter that has dropped to service.user
	cat >"$dir/dbus.conf" <<-EOF
	<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
	 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
	<busconfig>
	  <type>system</type>
	  <listen>unix:path=$dir/bus</listen>
	  <auth>EXTERNAL</auth>
	  <policy context="default">
	    <allow user="*"/>
	    <allow send_destination="*" eavesdrop="true"/>
	    <allow eavesdrop="true"/>
	    <allow own="*"/>
	  </policy>
	</busconfig>
	EOF
	dbus-daemon --nofork --nopidfile --nosyslog --config-file="$dir/dbus.conf" \
		</dev/null >"$dir/dbus.log" 2>&1 &
	DBUS_PID=$!
	echo "$DBUS_PID" >"$dir/dbus.pid"
	for ((i = 0; i < ${DBUS_WAIT_TENTHS:-100}; i++)); do
		[ -S "$dir/bus" ] && break
		_dbus_alive "$DBUS_PID" || break
		sleep 0.1
	done
	if [ ! -S "$dir/bus" ]; then
		cat "$dir/dbus.log" >&2
		_dbus_kill "$dir/dbus.pid"
		_dbus_err "dbus-daemon did not create $dir/bus"
		return
	fi
	export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$dir/bus" DBUS_PID
}

fake_machined_start() {
	local dir=${1:?fake_machined_start DIR BINARY [--machine SPEC]...} bin=${2:?fake_machined_start DIR BINARY} i
	shift 2
	[ -n "${DBUS_SYSTEM_BUS_ADDRESS:-}" ] || _dbus_err "no bus: call dbus_start first" || return
	[ -x "$bin" ] || _dbus_err "$bin: not an executable" || return
	rm -f "$dir/machined.in" "$dir/machined.out"
	mkfifo "$dir/machined.in" || return
	# read-write, so the open does not block; the shell keeps it, so fake_machined never sees EOF
	exec {FAKE_MACHINED_FD}<>"$dir/machined.in"
	"$bin" "$@" <"$dir/machined.in" >"$dir/machined.out" 2>"$dir/machined.err" {FAKE_MACHINED_FD}>&- &
	FAKE_MACHINED_PID=$!
	echo "$FAKE_MACHINED_PID" >"$dir/machined.pid"
	for ((i = 0; i < ${DBUS_WAIT_TENTHS:-100}; i++)); do
		grep -qx ready "$dir/machined.out" 2>/dev/null && break
		_dbus_alive "$FAKE_MACHINED_PID" || break
		sleep 0.1
	done
	if ! grep -qx ready "$dir/machined.out" 2>/dev/null; then
		cat "$dir/machined.err" >&2
		_dbus_kill "$dir/machined.pid"
		_dbus_err "fake_machined did not become ready"
		return
	fi
	export FAKE_MACHINED_PID
}

# fake_machined_cmd DIR LINE: each command answers one line, "ok" or "error: WHY".
fake_machined_cmd() {
	local dir=${1:?fake_machined_cmd DIR LINE} line=${2:?fake_machined_cmd DIR LINE} n i last
	[ -n "${FAKE_MACHINED_FD:-}" ] || _dbus_err "fake_machined is not running" || return
	n=$(wc -l <"$dir/machined.out")
	printf '%s\n' "$line" >&"$FAKE_MACHINED_FD" || return
	for ((i = 0; i < ${DBUS_WAIT_TENTHS:-100}; i++)); do
		[ "$(wc -l <"$dir/machined.out")" -gt "$n" ] && break
		_dbus_alive "${FAKE_MACHINED_PID:-0}" || break
		sleep 0.1
	done
	last=$(sed -n "$((n + 1))p" "$dir/machined.out")
	[ "$last" = ok ] || _dbus_err "fake_machined '$line': ${last:-no answer}"
}

dbus_stop() {
	local dir=${1:?dbus_stop DIR}
	_dbus_kill "$dir/machined.pid"
	if [ -n "${FAKE_MACHINED_FD:-}" ]; then
		exec {FAKE_MACHINED_FD}>&-
		unset FAKE_MACHINED_FD
	fi
	_dbus_kill "$dir/dbus.pid"
	rm -f "$dir/bus" "$dir/machined.in"
	unset FAKE_MACHINED_PID DBUS_PID
	return 0
}
