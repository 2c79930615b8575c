#!/bin/bash
# t_truth.sh: counts equal the kernel's own trace of real XSAVEs; thread exits add no saves; guest images once per put.
. "$(dirname "$0")/lib.sh"

require_kvm
case $(uname -r) in
[1-5].* | 6.[0-9].* | 6.1[0-5].*) skip_or_fail "the trace's load_fpu marks real saves from 6.16 on" ;;
esac
start_daemon

# --- host saves: N threads, each switched out once with live registers, then exiting.
# Ground truth: x86_fpu_regs_deactivated with load_fpu=1 (since 6.16 switch_fpu() sets
# TIF_NEED_FPU_LOAD before the XSAVE it traces; fpu__drop() reaches the tracepoint only with
# it clear) and x86_fpu_dropped, for the workload's tasks only.
N=300
make_cgroup exits
cg=$CG
FTRACE_DEFER=1 ftrace_open exits 'x86_fpu/x86_fpu_regs_deactivated:load_fpu == 1 && comm == "fpu_truth"' \
	'x86_fpu/x86_fpu_dropped:comm == "fpu_truth"'
# The workload joins the cgroup and waits; its counts so far are the baseline, then the trace
# and the workload start: from there on every event of the cgroup is a traced fpu_truth one.
run_traced fpu_truth "$BUILD/tests/threadexit" $N "$(cgroup_v2_root)$cg"
saves_truth=$(ftrace_count x86_fpu_regs_deactivated)
drops_truth=$(ftrace_count x86_fpu_dropped)
scrape >"$WORK/m" || fail "scrape failed"
# counted since the baseline (a series not there yet counts from 0)
saves=$(since fpu_regs_deactivated_total "cgroup=\"$cg\"")
by_value=$(since fpu_xstate_saves_total "cgroup=\"$cg\"")
zero=$(metric_sum "$WORK/m" fpu_xstate_saves_total "cgroup=\"$cg\"" 'xfeatures="0x0"')
drops=$(since fpu_task_drops_total "cgroup=\"$cg\"")
note "$N thread exits: real saves traced $saves_truth, exporter $saves ($by_value by XSTATE_BV); drops traced $drops_truth, exporter $drops"
[ "$saves" = "$saves_truth" ] || fail "fpu_regs_deactivated_total{cgroup=\"$cg\"} = $saves, the kernel traced $saves_truth real saves"
[ "$by_value" = "$saves_truth" ] || fail "fpu_xstate_saves_total sums to $by_value, want $saves_truth"
[ "$zero" = absent ] || fail "thread exits counted as saves: fpu_xstate_saves_total{xfeatures=\"0x0\"} = $zero"
[ "$drops" = "$drops_truth" ] || fail "fpu_task_drops_total = $drops, the kernel traced $drops_truth"

# --- guest images: one per put (fpu_reload), with a busy thread on the vCPUs' CPU so they are
# preempted with guest state loaded, the case where a switch saved the image before the put.
make_cgroup guest
gcg=$CG
spawn_in_cgroup "$gcg" taskset -c 0 sh -c 'end=$(($(date +%s) + 20)); while [ $(date +%s) -lt $end ]; do :; done'
busy=$SPAWNED
at_exit "kill $busy 2>/dev/null"
spawn_in_cgroup "$gcg" taskset -c 0 "$BUILD/tests/testvmm" -name guest=contended --runs 4000,4000 \
	--hold-threads --ready "$WORK/ready" >"$WORK/vmm.out" 2>&1
vmm=$SPAWNED
at_exit "kill $vmm 2>/dev/null; wait $vmm 2>/dev/null"
for _ in $(seq 300); do [ -s "$WORK/ready" ] && break; sleep 0.1; done
[ -s "$WORK/ready" ] || { cat "$WORK/vmm.out"; fail "the test VMM did not get ready"; }
kill $busy
reload_truth=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^fpu_reload=/) { sub(/.*=/, "", $i); s += $i } } END { print s }' "$WORK/ready")
scrape >"$WORK/m" || fail "scrape failed"
images=$(metric_sum "$WORK/m" fpu_guest_xstate_saves_total 'domain="contended"')
in_guest=$(( $(metric_sum "$WORK/m" fpu_regs_deactivated_total "cgroup=\"$gcg\"") - $(metric_sum "$WORK/m" fpu_xstate_saves_total "cgroup=\"$gcg\"") ))
note "guest images $images for $reload_truth puts (KVM fpu_reload); $in_guest context switches saved guest state"
[ "$images" = "$reload_truth" ] || fail "fpu_guest_xstate_saves_total{domain=\"contended\"} = $images, KVM put the state back $reload_truth times"
for xf in $(grep '^fpu_guest_xstate_saves_total{' "$WORK/m" | grep -o 'xfeatures="0x[0-9a-f]*"' | cut -d'"' -f2); do
	(( (xf & 0x200) == 0 )) || fail "guest XSTATE_BV $xf carries the PKRU bit (the host's PKRU)"
done

# --- hostile names: invalid UTF-8, quotes, backslashes, braces, a 3.5 KB path
V2=$(cgroup_v2_root)
bad=$(printf '/fpu_e2e_%s_bad\xff' $$)
quoted="/fpu_e2e_$$_q\"uo\\te{x}.service"
long="/fpu_e2e_$$_long"
for _ in $(seq 14); do long="$long/$(printf 'a%.0s' $(seq 250))"; done
for c in "$bad" "$quoted" "$long"; do
	mkdir -p "$V2$c" || fail "mkdir $c"
	run_in_cgroup "$c" "$BUILD/tests/sigloop" 3 >/dev/null || fail "sigloop in $c"
done
at_exit "rmdir '$V2$bad' '$V2$quoted'; d='$V2$long'; while [ \"\$d\" != '$V2' ]; do rmdir \"\$d\"; d=\${d%/*}; done"
"$BUILD/tests/testvmm" -name "$(printf 'guest=vm\xfe"q\\{}')" --runs 7 --hold-threads --ready "$WORK/ready2" >/dev/null 2>&1 &
hvm=$!
at_exit "kill $hvm 2>/dev/null"
for _ in $(seq 100); do [ -s "$WORK/ready2" ] && break; sleep 0.1; done
scrape >"$WORK/h" || fail "scrape failed"
curl -sf -H 'Accept: application/openmetrics-text; version=1.0.0' "http://127.0.0.1:$PORT/metrics" >"$WORK/h.om" ||
	fail "OpenMetrics scrape failed"
promtool check metrics <"$WORK/h" || fail "promtool rejects the output with hostile names"
for f in "$WORK/h" "$WORK/h.om"; do
	iconv -f UTF-8 -t UTF-8 "$f" >/dev/null || fail "$(basename "$f") is not valid UTF-8"
done
unique_series "$WORK/h"
want_bad=$(printf 'cgroup="/fpu_e2e_%s_bad\xef\xbf\xbd"' $$)
[ "$(metric_sum "$WORK/h" fpu_sigreturn_restores_total "$want_bad")" = 3 ] || fail "cgroup with invalid UTF-8 not exported as $want_bad"
[ "$(metric_sum "$WORK/h" fpu_sigreturn_restores_total "cgroup=\"/fpu_e2e_$$_q\\\"uo\\\\te{x}.service\"")" = 3 ] ||
	fail "cgroup with quotes and backslashes not exported escaped: $(grep -a "_q" "$WORK/h" | head -2)"
grep -aq "unit=\"fpu_e2e_$$_q\\\\\"uo\\\\\\\\te{x}.service\"" "$WORK/h" || fail "unit label of the quoted cgroup"
[ "$(metric_sum "$WORK/h" fpu_sigreturn_restores_total "cgroup=\"$long\"")" = 3 ] || fail "the 3.5 KB cgroup path"
want_vm=$(printf 'domain="vm\xef\xbf\xbd\\"q\\\\{}"')
[ "$(metric_sum "$WORK/h" fpu_guest_reloads_total "$want_vm")" = 7 ] ||
	fail "VM named with invalid UTF-8 and quotes: $(grep -a '^fpu_guest_reloads_total' "$WORK/h" | head -3)"
scrape /status | jq -e . >/dev/null || fail "/status is not valid JSON with hostile names"
note "hostile cgroup, unit and VM names: valid UTF-8 (U+FFFD), escaped, promtool clean, counts exact"
