# qemu.sh: owns the e2e test VM: Debian QEMU under KVM (SeaBIOS only, no disk) started/paused/stopped over QMP, and its per-vCPU KVM stats (fpu_reload) read via query-stats.

# _qemu_json_flatten: stdin = JSON documents, one per line; stdout = "path=value"
# lines (no jq/python needed), e.g.
#   {"return": [{"thread-id": 7, "qom-path": "/machine/unattached/device[0]"}]}
# becomes
#   .return[0].thread-id=7
#   .return[0].qom-path=/machine/unattached/device[0]
# Empty objects/arrays print as "={}" / "=[]". Strings are unescaped for
# \" \\ \/ \n \t; other escapes are kept verbatim. Exit 1 on malformed input.
_qemu_json_flatten() {
	awk '
	function ws() { while (pos <= n && index(" \t\r\n", substr(s, pos, 1)) > 0) pos++ }
	function str(   out, c, e) {
		out = ""; pos++                                   # opening quote
		while (pos <= n) {
			c = substr(s, pos, 1)
			if (c == "\"") { pos++; return out }
			if (c == "\\") {
				e = substr(s, pos + 1, 1); pos += 2
				if (e == "n") out = out "\n"; else if (e == "t") out = out "\t"
				else if (e == "\"" || e == "\\" || e == "/") out = out e
				else out = out "\\" e
				continue
			}
			out = out c; pos++
		}
		bad = 1; return out
	}
	function val(path,   c, k, i, lit) {
		ws(); if (pos > n) { bad = 1; return }
		c = substr(s, pos, 1)
		if (c == "{") {
			pos++; ws()
			if (substr(s, pos, 1) == "}") { pos++; print path "={}"; return }
			while (pos <= n && !bad) {
				ws(); if (substr(s, pos, 1) != "\"") { bad = 1; return }
				k = str(); ws()
				if (substr(s, pos, 1) != ":") { bad = 1; return }
				pos++; val(path "." k); ws()
				c = substr(s, pos, 1); pos++
				if (c == "}") return
				if (c != ",") { bad = 1; return }
			}
			bad = 1; return
		}
		if (c == "[") {
			pos++; ws()
			if (substr(s, pos, 1) == "]") { pos++; print path "=[]"; return }
			for (i = 0; pos <= n && !bad; i++) {
				val(path "[" i "]"); ws()
				c = substr(s, pos, 1); pos++
				if (c == "]") return
				if (c != ",") { bad = 1; return }
			}
			bad = 1; return
		}
		if (c == "\"") { print path "=" str(); return }
		lit = ""
		while (pos <= n && index(",]} \t\r\n", substr(s, pos, 1)) == 0) { lit = lit substr(s, pos, 1); pos++ }
		if (lit == "") { bad = 1; pos++; return }
		print path "=" lit
	}
	{
		s = $0; n = length(s); pos = 1; bad = 0
		ws(); if (pos > n) next
		val("")
		if (bad) { print "_qemu_json_flatten: malformed JSON: " substr(s, 1, 200) > "/dev/stderr"; err = 1 }
	}
	END { exit err }
	'
}

# _qemu_absdir DIR: DIR as the absolute physical path qemu_start put on QEMU's command line.
_qemu_absdir() {
	(cd -- "$1" 2>/dev/null && pwd -P)
}

# _qemu_dir_pid DIR: prints the pid of the live QEMU serving DIR (taken from
# DIR/qemu.pid, else $QEMU_PID) after checking that its command line really has
# "-qmp unix:DIR/qmp.sock,server..." (guards against stale pids / pid reuse).
_qemu_dir_pid() {
	local dir cand
	dir=$(_qemu_absdir "${1:?_qemu_dir_pid: DIR missing}") || return 1
	for cand in "$(cat "$dir/qemu.pid" 2>/dev/null)" "${QEMU_PID:-}"; do
		[[ $cand =~ ^[0-9]+$ ]] || continue
		if tr '\0' '\n' 2>/dev/null <"/proc/$cand/cmdline" |
			grep -qF -- "unix:${dir//,/,,}/qmp.sock,server"; then
			printf '%s\n' "$cand"
			return 0
		fi
	done
	return 1
}

# _qemu_alive PID: true while PID exists and is not a zombie.
_qemu_alive() {
	local st
	st=$(sed -n 's/^.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z && $st != X ]]
}

# _qmp_read_reply WANT: reads lines from fd $r (caller's local) until one whose
# top-level keys match WANT ("greeting": has "QMP"; "reply": has "return" or
# "error"); asynchronous events are skipped. Sets caller's $line and $keys.
# Bounded by the caller's $deadline (microseconds, from $EPOCHREALTIME).
_qmp_read_reply() {
	local want=$1 left t
	while :; do
		left=$((deadline - ${EPOCHREALTIME/[.,]/}))
		((left > 0)) || return 1
		printf -v t '%d.%06d' $((left / 1000000)) $((left % 1000000))
		IFS= read -r -t "$t" -u "$r" line || return 1
		line=${line%$'\r'}
		[[ -n $line ]] || continue
		keys=" $(printf '%s\n' "$line" | _qemu_json_flatten 2>/dev/null |
			sed -n 's/^\.\([A-Za-z0-9_-]*\).*/\1/p' | sort -u | tr '\n' ' ')"
		case $want in
		greeting) [[ $keys == *" QMP "* ]] && return 0 ;;
		reply) [[ $keys == *" return "* || $keys == *" error "* ]] && return 0 ;;
		esac
	done
}

# _qmp_session TIMEOUT DIR JSON...: one QMP connection, bounded by TIMEOUT
# seconds overall: reads the greeting, negotiates capabilities, then sends each
# command and prints its reply (exactly one line per command, events skipped).
# Returns 1 on connection failure/timeout, 2 if any command got an error reply.
_qmp_session() {
	local timeout=$1 dir=$2
	shift 2
	local sock=$dir/qmp.sock tmp spid w r line="" keys="" cmd rc=0 deadline first=1
	if [[ ! -S $sock ]]; then
		echo "qmp: no QMP socket at $sock" >&2
		return 1
	fi
	command -v socat >/dev/null 2>&1 || { echo "qmp: socat not found" >&2; return 1; }
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/qmp.XXXXXX") || return 1
	if ! mkfifo "$tmp/in" "$tmp/out"; then
		rm -rf "$tmp"
		return 1
	fi
	deadline=$((${EPOCHREALTIME/[.,]/} + timeout * 1000000))
	# Connect by relative name from inside DIR: no socat address escaping of ',' ':'
	# in DIR and no 108-byte sun_path limit on this side.
	(cd -- "$dir" && exec socat -T "$timeout" - UNIX-CONNECT:qmp.sock) <"$tmp/in" >"$tmp/out" 2>"$tmp/err" &
	spid=$!
	# Opening the fifos unblocks socat's own (blocking) opens, in the same order.
	exec {w}>"$tmp/in" {r}<"$tmp/out"

	if ! _qmp_read_reply greeting; then
		echo "qmp: no QMP greeting from $sock within ${timeout}s${line:+ (got: $line)}" >&2
		rc=1
	else
		for cmd in '{"execute":"qmp_capabilities"}' "$@"; do
			cmd=${cmd//$'\n'/ }
			# Write from a subshell: if socat is gone, SIGPIPE kills only that.
			if ! (printf '%s\n' "$cmd" >&"$w") 2>/dev/null; then
				echo "qmp: connection to $sock lost while sending: $cmd" >&2
				rc=1
				break
			fi
			if ! _qmp_read_reply reply; then
				echo "qmp: no reply within ${timeout}s to: $cmd" >&2
				rc=1
				break
			fi
			if ((first)); then # handshake reply is not printed
				first=0
				if [[ $keys == *" error "* ]]; then
					echo "qmp: capabilities negotiation failed: $line" >&2
					rc=1
					break
				fi
				continue
			fi
			[[ $keys == *" error "* ]] && rc=2
			printf '%s\n' "$line"
		done
	fi

	exec {w}>&- {r}<&-
	kill "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	if ((rc == 1)) && [[ -s $tmp/err ]]; then
		sed 's/^/qmp: socat: /' "$tmp/err" >&2
	fi
	rm -rf "$tmp"
	return "$rc"
}

# qmp DIR JSON...: connects to DIR/qmp.sock, does the capabilities handshake,
# then sends each command and prints its raw reply, exactly one JSON object per
# line per command, in order (greeting, handshake reply and async events such
# as STOP are not printed). Whole call bounded by $QMP_TIMEOUT (default 10 s).
# rc: 0 ok, 1 connection failure/timeout, 2 some command returned {"error":...}.
qmp() {
	local dir=${1:?usage: qmp DIR JSON...} timeout=${QMP_TIMEOUT:-10}
	shift
	[[ $timeout =~ ^[1-9][0-9]*$ ]] || timeout=10
	_qmp_session "$timeout" "$dir" "$@"
}

# qemu_start NAME SMP DIR: start QEMU/KVM (SeaBIOS, no boot device), wait until
# QMP answers (<= ~10 s), export QEMU_PID. QEMU runs detached from the calling
# shell (a small watcher subshell, not the caller, is its parent and reaps it,
# writing its exit status to DIR/qemu.exit), so a bare `wait` in the test does
# not wait for QEMU. Its stdout/stderr go to DIR/qemu.log, shown on failure.
# $QEMU_BIN overrides the binary. No -cpu host: on this nested host it aborts
# (setting MSR 0x10a fails); the default CPU model works.
qemu_start() {
	if (($# != 3)); then
		echo "usage: qemu_start NAME SMP DIR" >&2
		return 2
	fi
	local name=$1 smp=$2 dir=$3 bin=${QEMU_BIN:-qemu-system-x86_64} pid i ok=0 st deadline
	if [[ ! $smp =~ ^[1-9][0-9]*$ ]]; then
		echo "qemu_start: SMP must be a positive integer, got '$smp'" >&2
		return 2
	fi
	command -v "$bin" >/dev/null 2>&1 || { echo "qemu_start: $bin not found" >&2; return 1; }
	[[ -r /dev/kvm && -w /dev/kvm ]] || { echo "qemu_start: /dev/kvm not usable" >&2; return 1; }
	mkdir -p -- "$dir" || return 1
	dir=$(_qemu_absdir "$dir") || return 1
	if pid=$(_qemu_dir_pid "$dir"); then
		echo "qemu_start: a QEMU (pid $pid) already serves $dir" >&2
		return 1
	fi
	rm -f "$dir/qmp.sock" "$dir/qemu.pid" "$dir/qemu.log" "$dir/qemu.exit"

	# The watcher prints QEMU's pid on fd 3 (the $(...) pipe), closes it, then
	# waits for QEMU. Commas in option values are doubled (QEMU escaping).
	pid=$(
		(
			"$bin" -accel kvm \
				-name "guest=${name//,/,,},debug-threads=on" \
				-smp "$smp" -m 64 \
				-nodefaults -nographic -display none -serial none -monitor none \
				-qmp "unix:${dir//,/,,}/qmp.sock,server=on,wait=off" \
				-pidfile "$dir/qemu.pid" \
				</dev/null >"$dir/qemu.log" 2>&1 3>&- &
			echo "$!" >&3
			exec 3>&-
			st=0
			wait "$!" || st=$?
			echo "$st" >"$dir/qemu.exit"
		) 3>&1 </dev/null >/dev/null 2>&1 &
	)
	if [[ ! $pid =~ ^[0-9]+$ ]]; then
		echo "qemu_start: could not launch $bin" >&2
		return 1
	fi

	deadline=$((SECONDS + 10))
	while ((SECONDS < deadline)); do
		_qemu_alive "$pid" || break
		if [[ -S $dir/qmp.sock ]] && _qmp_session 2 "$dir" '{"execute":"query-status"}' >/dev/null 2>&1; then
			ok=1
			break
		fi
		sleep 0.1
	done

	if ((ok == 0)); then
		if _qemu_alive "$pid"; then
			echo "qemu_start: QMP at $dir/qmp.sock did not answer within ~10 s; killing QEMU (pid $pid)" >&2
			kill -TERM "$pid" 2>/dev/null || true
			for ((i = 0; i < 50; i++)); do _qemu_alive "$pid" || break; sleep 0.1; done
			kill -KILL "$pid" 2>/dev/null || true
		else
			for ((i = 0; i < 20; i++)); do [[ -s $dir/qemu.exit ]] && break; sleep 0.05; done
			st=$(cat "$dir/qemu.exit" 2>/dev/null) || st=unknown
			echo "qemu_start: QEMU exited during startup (status ${st:-unknown})" >&2
		fi
		if [[ -s $dir/qemu.log ]]; then
			echo "qemu_start: QEMU output ($dir/qemu.log):" >&2
			sed 's/^/  /' "$dir/qemu.log" >&2
		fi
		return 1
	fi
	export QEMU_PID=$pid
	return 0
}

# qemu_pause DIR: stop the vCPUs and wait (<= ~10 s) until query-status says running=false.
qemu_pause() {
	local dir=${1:?usage: qemu_pause DIR} out="" i
	qmp "$dir" '{"execute":"stop"}' >/dev/null || { echo "qemu_pause: stop failed" >&2; return 1; }
	for ((i = 0; i < 100; i++)); do
		out=$(qmp "$dir" '{"execute":"query-status"}' | _qemu_json_flatten) || true
		if grep -qx '\.return\.running=false' <<<"$out"; then
			return 0
		fi
		sleep 0.1
	done
	echo "qemu_pause: guest still running after ~10 s: $(grep '^\.return\.status=' <<<"$out")" >&2
	return 1
}

# qemu_fpu_reload DIR: one line per vCPU, sorted by index: "vcpu=<index> fpu_reload=<n>".
# query-stats (target vcpu, provider kvm, names [fpu_reload]) returns one entry
# per vCPU keyed by qom-path; query-cpus-fast (same QMP connection) maps
# qom-path -> cpu-index. Also checks that each vCPU's thread-id is a thread of
# QEMU named "CPU <index>/KVM". Fails (rc 1, message on stderr) on any mismatch.
qemu_fpu_reload() {
	local dir=${1:?usage: qemu_fpu_reload DIR} pid out flat rc=0
	if ! pid=$(_qemu_dir_pid "$dir"); then
		echo "qemu_fpu_reload: no running QEMU for $dir" >&2
		return 1
	fi
	out=$(qmp "$dir" \
		'{"execute":"query-cpus-fast"}' \
		'{"execute":"query-stats","arguments":{"target":"vcpu","providers":[{"provider":"kvm","names":["fpu_reload"]}]}}') || rc=$?
	if ((rc != 0)); then
		echo "qemu_fpu_reload: QMP failed (rc=$rc): $out" >&2
		return 1
	fi
	# Prefix every flattened path with its reply number (1 = cpus, 2 = stats).
	flat=$(printf '%s\n' "$out" | awk '{print NR "\t" $0}' | while IFS=$'\t' read -r nr json; do
		printf '%s\n' "$json" | _qemu_json_flatten | sed "s/^/$nr/"
	done)
	awk -v pid="$pid" '
	function fail(msg) { print "qemu_fpu_reload: " msg > "/dev/stderr"; bad = 1 }
	{
		eq = index($0, "="); p = substr($0, 1, eq - 1); v = substr($0, eq + 1)
		if (match(p, /^1\.return\[[0-9]+\]\./)) {
			i = substr(p, 10, RLENGTH - 11); k = substr(p, RLENGTH + 1)
			if (k == "cpu-index") cidx[i] = v
			else if (k == "qom-path") cqom[i] = v
			else if (k == "thread-id") ctid[i] = v
			ncpu = (i + 1 > ncpu) ? i + 1 : ncpu
		} else if (match(p, /^2\.return\[[0-9]+\]\./)) {
			i = substr(p, 10, RLENGTH - 11); k = substr(p, RLENGTH + 1)
			if (k == "qom-path") sqom[i] = v
			else if (k == "provider") sprov[i] = v
			else if (match(k, /^stats\[[0-9]+\]\./)) {
				j = substr(k, 7, RLENGTH - 8); f = substr(k, RLENGTH + 1)
				if (f == "name") sname[i, j] = v; else if (f == "value") sval[i, j] = v
				if (j + 1 > nst[i]) nst[i] = j + 1
			}
			nres = (i + 1 > nres) ? i + 1 : nres
		}
	}
	END {
		if (ncpu == 0) fail("query-cpus-fast returned no vCPUs")
		for (i = 0; i < nres; i++) {
			if (sprov[i] != "kvm") continue
			for (j = 0; j < nst[i]; j++)
				if (sname[i, j] == "fpu_reload") { val[sqom[i]] = sval[i, j]; have[sqom[i]] = 1 }
		}
		for (i = 0; i < ncpu; i++) {
			if (!(i in cidx) || !(i in cqom) || !(i in ctid)) { fail("incomplete query-cpus-fast entry " i); continue }
			comm = ""; f = "/proc/" pid "/task/" ctid[i] "/comm"
			if ((getline comm < f) <= 0) comm = "(no such thread)"
			close(f)
			if (comm != "CPU " cidx[i] "/KVM")
				fail("vCPU " cidx[i] " thread-id " ctid[i] " is \"" comm "\", expected \"CPU " cidx[i] "/KVM\" (qemu pid " pid ")")
			if (!(cqom[i] in have)) { fail("no kvm fpu_reload stat for vCPU " cidx[i] " (" cqom[i] ")"); continue }
			if (val[cqom[i]] !~ /^[0-9]+$/) { fail("bad fpu_reload value \"" val[cqom[i]] "\" for vCPU " cidx[i]); continue }
			if (cidx[i] in line) { fail("duplicate cpu-index " cidx[i]); continue }
			line[cidx[i]] = "vcpu=" cidx[i] " fpu_reload=" val[cqom[i]]
		}
		for (i = 0; i < ncpu; i++) if (!bad && !(i in line)) fail("cpu-index " i " missing")
		if (bad) exit 1
		for (i = 0; i < ncpu; i++) print line[i]   # cpu-index is 0..n-1
	}' <<<"$flat"
}

# qemu_fpu_reload_sum DIR: sum of fpu_reload over all vCPUs.
qemu_fpu_reload_sum() {
	local dir=${1:?usage: qemu_fpu_reload_sum DIR} out
	out=$(qemu_fpu_reload "$dir") || return 1
	awk '{ sub(/.*fpu_reload=/, ""); s += $0 } END { printf "%.0f\n", s }' <<<"$out"
}

# qemu_stop DIR: "quit" via QMP; SIGTERM if still alive after 5 s (SIGKILL after
# 5 s more); waits until the process is gone. No-op if nothing runs for DIR.
qemu_stop() {
	local dir=${1:?usage: qemu_stop DIR} pid i
	if ! pid=$(_qemu_dir_pid "$dir"); then
		return 0
	fi
	_qmp_session 3 "$dir" '{"execute":"quit"}' >/dev/null 2>&1 || true
	for ((i = 0; i < 50; i++)); do
		_qemu_alive "$pid" || break
		sleep 0.1
	done
	if _qemu_alive "$pid"; then
		echo "qemu_stop: QEMU (pid $pid) still alive 5 s after quit; sending SIGTERM" >&2
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			_qemu_alive "$pid" || break
			sleep 0.1
		done
		if _qemu_alive "$pid"; then
			echo "qemu_stop: QEMU (pid $pid) ignored SIGTERM; sending SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	# QEMU is not our child (qemu_start's watcher reaps it): poll until gone.
	for ((i = 0; i < 50; i++)); do
		_qemu_alive "$pid" || break
		sleep 0.1
	done
	if _qemu_alive "$pid"; then
		echo "qemu_stop: QEMU (pid $pid) survived SIGKILL?" >&2
		return 1
	fi
	for ((i = 0; i < 20; i++)); do # give its reaper a moment: no zombie left
		[[ -e /proc/$pid ]] || break
		sleep 0.1
	done
	rm -f "$dir/qmp.sock"
	if [[ ${QEMU_PID:-} == "$pid" ]]; then
		unset QEMU_PID
	fi
	return 0
}
