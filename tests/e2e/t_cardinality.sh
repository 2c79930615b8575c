#!/bin/bash
# t_cardinality.sh: cgroups.depth, cgroups.exclude and series.max_per_family bound what is exported, and never fold the self-metrics.
. "$(dirname "$0")/lib.sh"

V2=$(cgroup_v2_root)
cat >"$WORK/card.yaml" <<'YAML'
cgroups:
  depth: 1
  exclude: ["_skip$"]
YAML
start_daemon --config.file="$WORK/card.yaml"
top="/fpu_e2e_$$_card"
mkdir -p "$V2$top/a/b"
at_exit "rmdir '$V2$top/a/b' '$V2$top/a' '$V2$top'"
make_cgroup skip
run_in_cgroup "$top/a/b" "$BUILD/tests/sigloop" 40 >/dev/null
run_in_cgroup "$top/a" "$BUILD/tests/sigloop" 2 >/dev/null
run_in_cgroup "$CG" "$BUILD/tests/sigloop" 7 >/dev/null
scrape >"$WORK/m" || fail "scrape failed"

got=$(metric_sum "$WORK/m" fpu_sigreturn_restores_total "cgroup=\"$top\"")
[ "$got" = 42 ] || fail "depth 1: $top sums $got restores, want 42"
grep -q "cgroup=\"$top/a" "$WORK/m" && fail "depth 1 still exports $top/a..."
grep -q "_skip\"" "$WORK/m" && fail "an excluded cgroup is exported"
note "depth 1: $top/a and $top/a/b summed into $top ($got restores); _skip excluded"
stop_daemon

# series.max_per_family 4: the first four cgroups keep their series, the rest go to one overflow
# series per counter family; info series beyond four are dropped, not summed; self-metrics never fold.
cat >"$WORK/cap.yaml" <<YAML
cgroups:
  include: ["^/fpu_e2e_$$_cap"]
series:
  max_per_family: 4
YAML
start_daemon --config.file="$WORK/cap.yaml"
for i in 0 1 2 3 4 5; do
	mkdir "$V2/fpu_e2e_$$_cap$i"
	at_exit "rmdir '$V2/fpu_e2e_$$_cap$i'"
	run_in_cgroup "/fpu_e2e_$$_cap$i" "$BUILD/tests/sigloop" $((i + 1)) >/dev/null
	scrape >"$WORK/m$i" || fail "scrape failed"	# each is seen before the next one runs
	unique_series "$WORK/m$i"
done
for i in 0 1 2 3; do
	got=$(metric_sum "$WORK/m5" fpu_sigreturn_restores_total "cgroup=\"/fpu_e2e_$$_cap$i\"")
	[ "$got" = $((i + 1)) ] || fail "cap$i: $got restores, want $((i + 1))"
done
grep -q "_cap[45]\"" "$WORK/m5" && fail "series beyond max_per_family exported by name"
ov=$(metric_sum "$WORK/m5" fpu_sigreturn_restores_total 'cgroup="overflow"')
[ "$ov" = 11 ] || fail "overflow restores $ov, want 11 (5 + 6)"
[ "$(grep -c '^fpu_cgroup_info{' "$WORK/m5")" = 4 ] || fail "fpu_cgroup_info: $(grep -c '^fpu_cgroup_info{' "$WORK/m5") series, want 4"
grep -q '^fpu_cgroup_info{cgroup="overflow"' "$WORK/m5" && fail "info series summed into overflow"
probes=$(grep -c '^fpu_exporter_probe_attached{' "$WORK/m5")
in_status=$(scrape /status | jq '.probes | length')
[ "$probes" = "$in_status" ] && ! grep -q 'probe="overflow"' "$WORK/m5" || fail "self-metrics folded: $probes probe series"
[ "$(metric_sum "$WORK/m5" fpu_exporter_series_overflow_total)" != 0 ] || fail "overflow not counted"
# more work in a folded cgroup: the overflow series grows by exactly that; kept ones stay
run_in_cgroup "/fpu_e2e_$$_cap5" "$BUILD/tests/sigloop" 20 >/dev/null
scrape >"$WORK/m6" || fail "scrape failed"
monotonic "$WORK/m5" "$WORK/m6"
[ "$(metric_sum "$WORK/m6" fpu_sigreturn_restores_total 'cgroup="overflow"')" = 31 ] || fail "overflow did not grow by 20"
[ "$(metric_sum "$WORK/m6" fpu_sigreturn_restores_total "cgroup=\"/fpu_e2e_$$_cap0\"")" = 1 ] || fail "cap0 changed"
promtool check metrics <"$WORK/m6" || fail "promtool on capped output"
note "max_per_family 4: cap0-3 kept exact, cap4-5 in overflow (11, then 31), 4 info series, $probes probes unfolded"
