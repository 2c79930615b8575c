#!/bin/bash
# t_avx.sh: a workload that sleeps with YMM dirty: its cgroup's saves by XSTATE_BV and by component equal the kernel's trace.
. "$(dirname "$0")/lib.sh"

N=2000
grep -qw avx /proc/cpuinfo || skip_or_fail "this CPU has no AVX"
case $(uname -r) in
[1-5].* | 6.[0-9].* | 6.1[0-5].*) skip_or_fail "the trace's load_fpu marks real saves from 6.16 on" ;;
esac
start_daemon
make_cgroup avx
cg=$CG
# Ground truth: x86_fpu_regs_deactivated with load_fpu=1 (a real XSAVE, see t_truth.sh) for the
# workload's tasks, selected by the name it takes once it is in the cgroup.
FTRACE_DEFER=1 ftrace_open avx 'x86_fpu/x86_fpu_regs_deactivated:load_fpu == 1 && comm == "fpu_avx"'
run_traced fpu_avx "$BUILD/tests/avxspin" $N "$(cgroup_v2_root)$cg"
all_truth=$(ftrace_count x86_fpu_regs_deactivated)
# by XSTATE_BV, as the exporter writes it: "0x" and lowercase hex
awk '/ x86_fpu_regs_deactivated:/ { for (i = 1; i < NF; i++) if ($i == "xfeatures:") n["0x" $(i + 1)]++ }
     END { for (v in n) print v, n[v] }' "$FTRACE/trace" | sort >"$WORK/truth"
scrape >"$WORK/m" || fail "scrape failed"

avx_truth=0
while read -r v n; do
	got=$(since fpu_xstate_saves_total "cgroup=\"$cg\"" "xfeatures=\"$v\"")
	note "xfeatures=$v: traced $n, exporter $got"
	[ "$got" = "$n" ] || fail "fpu_xstate_saves_total{cgroup=\"$cg\",xfeatures=\"$v\"} = $got, the kernel traced $n"
	(( v & 4 )) && avx_truth=$((avx_truth + n))
done <"$WORK/truth"
saves=$(since fpu_regs_deactivated_total "cgroup=\"$cg\"")
by_value=$(since fpu_xstate_saves_total "cgroup=\"$cg\"")
avx=$(since fpu_xstate_component_saves_total "cgroup=\"$cg\"" 'component="avx"')
note "$N sleeps with ymm8 dirty: real saves traced $all_truth (avx live in $avx_truth), exporter $saves ($avx avx)"
# most sleeps block and switch the task out with ymm8 live: a workload that did not is no test
[ "$avx_truth" -ge $((N / 2)) ] || fail "only $avx_truth of $N sleeps were traced as AVX saves"
[ "$saves" = "$all_truth" ] || fail "fpu_regs_deactivated_total{cgroup=\"$cg\"} = $saves, the kernel traced $all_truth"
[ "$by_value" = "$all_truth" ] || fail "fpu_xstate_saves_total sums to $by_value, the kernel traced $all_truth"
[ "$avx" = "$avx_truth" ] || fail "fpu_xstate_component_saves_total{component=\"avx\"} = $avx, the kernel traced $avx_truth"
