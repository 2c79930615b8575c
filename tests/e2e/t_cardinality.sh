#!/bin/bash
# t_cardinality.sh: cgroups.depth, cgroups.exclude and series.max_per_family bound what is exported.
. "$(dirname "$0")/lib.sh"

V2=$(cgroup_v2_root)
cat >"$WORK/card.yaml" <<'YAML'
cgroups:
  depth: 1
  exclude: ["_skip$"]
series:
  max_per_family: 4
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
[ "$got" -ge 42 ] && [ "$got" -le 52 ] || fail "depth 1: $top sums $got restores, want [42, 52]"
grep -q "cgroup=\"$top/a" "$WORK/m" && fail "depth 1 still exports $top/a..."
grep -q "_skip\"" "$WORK/m" && fail "an excluded cgroup is exported"
note "depth 1: $top/a and $top/a/b summed into $top ($got restores); _skip excluded"

# series.max_per_family: of the 11 probes, 4 series stay and 7 fold into one more, probe="overflow"
n=$(grep -c '^fpu_exporter_probe_attached{' "$WORK/m")
[ "$n" = 5 ] || fail "fpu_exporter_probe_attached has $n series, want 4 and the overflow"
[ "$(metric_sum "$WORK/m" fpu_exporter_probe_attached 'probe="overflow"')" = 7 ] ||
	fail "no overflow series holding the folded probes"
folded=$(metric_sum "$WORK/m" fpu_exporter_series_folded)
[ "$folded" -ge 7 ] || fail "fpu_exporter_series_folded = $folded"
promtool check metrics <"$WORK/m" || fail "promtool on folded output"
note "max_per_family 4: probes folded into probe=\"overflow\"; $folded series folded in all"
