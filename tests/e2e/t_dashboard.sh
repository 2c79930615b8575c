#!/bin/bash
# t_dashboard.sh: a real Prometheus scrapes the daemon under load; every panel query returns data, every rule evaluates.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/qemu.sh"

require_kvm
DASH=$ROOT/dashboards/fpu_exporter.json
RULES=$ROOT/dashboards/rules.yml
command -v prometheus >/dev/null || skip_or_fail "prometheus is not installed"

# --- the dashboard's structure, before anything runs
jq -e '.panels | length > 0' "$DASH" >/dev/null || fail "no panels"
dups=$(jq '[.panels[].id] | group_by(.) | map(select(length > 1)) | length' "$DASH")
[ "$dups" = 0 ] || fail "panel ids are not unique"
bad=$(jq -r '.panels[] | select(.datasource == null or (.targets | length) == 0) | .title' "$DASH")
[ -z "$bad" ] || fail "panels without a datasource or targets: $bad"
bad=$(jq -r '.panels[] | select(any(.targets[]; .expr == null or .expr == "")) | .title' "$DASH")
[ -z "$bad" ] || fail "panels with an empty query: $bad"
jq -e '.templating.list | map(.name) | contains(["datasource", "instance", "domain", "cgroup"])' "$DASH" >/dev/null ||
	fail "dashboard variables missing"

# --- the daemon, workloads, and Prometheus scraping every second
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
at_exit "sysctl -qw kernel.bpf_stats_enabled=$old_stats"
start_daemon
PPORT=$(free_port)
cat >"$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$RULES"]
scrape_configs:
  - job_name: fpu_exporter
    static_configs: [{ targets: ["127.0.0.1:$PORT"] }]
YAML
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
	--web.listen-address="127.0.0.1:$PPORT" >"$WORK/prometheus.log" 2>&1 &
prom=$!
at_exit "kill $prom; wait $prom"
PROM=http://127.0.0.1:$PPORT
for _ in $(seq 100); do curl -sf -o /dev/null "$PROM/-/ready" && break; sleep 0.1; done
curl -sf -o /dev/null "$PROM/-/ready" || { cat "$WORK/prometheus.log"; fail "prometheus did not start"; }

mkdir "$WORK/qemu"
qemu_start dash-qemu 2 "$WORK/qemu" || fail "QEMU did not start"
at_exit "qemu_stop '$WORK/qemu'"
"$BUILD/tests/testvmm" -name guest=dash-vmm --runs 500,700,900 --hold-threads --ready "$WORK/ready" \
	>/dev/null 2>&1 &
at_exit "kill $!; wait $!"
make_cgroup dash
cg=$CG
for _ in 1 2 3 4; do
	run_in_cgroup "$cg" "$BUILD/tests/sigloop" 200 >/dev/null
	run_in_cgroup "$cg" "$BUILD/tests/sigbad" frame 5 >/dev/null
	run_in_cgroup "$cg" "$BUILD/tests/sigbad" magic 5 >/dev/null
	run_in_cgroup "$cg" "$BUILD/tests/avxspin" 2000 >/dev/null
	sleep 1
done

query() {	# query EXPR: prints the result count, or fails on an error
	local out
	out=$(curl -sf "$PROM/api/v1/query" --data-urlencode "query=$1") || fail "query failed: $1"
	[ "$(jq -r .status <<<"$out")" = success ] || fail "query error: $1: $out"
	jq '.data.result | length' <<<"$out"
}

# --- every panel query, variables substituted as "All", returns data
jq -r '.panels[] | .title as $t | .targets[] | "\($t)\t\(.expr)"' "$DASH" >"$WORK/queries"
while IFS=$'\t' read -r title expr; do
	q=${expr//\$instance/.*}
	q=${q//\$domain/.*}
	q=${q//\$cgroup/.*}
	q=${q//\$__rate_interval/15s}
	n=0
	for _ in $(seq 20); do	# rates need two samples and an evaluation of their rule
		n=$(query "$q")
		[ "$n" -gt 0 ] && break
		sleep 0.5
	done
	note "panel \"$title\": $n series"
	[ "$n" -gt 0 ] || fail "panel \"$title\" has no data: $q"
done <"$WORK/queries"

# --- Prometheus asked for OpenMetrics and its strict parser took every scrape
targets=$(curl -sf "$PROM/api/v1/targets") || fail "targets API"
jq -e '.data.activeTargets[0] | .health == "up" and .lastError == ""' <<<"$targets" >/dev/null ||
	fail "the target is not healthy: $(jq -c '.data.activeTargets[0] | {health, lastError}' <<<"$targets")"
om=$(curl -sf "$PROM/api/v1/query" --data-urlencode 'query=fpu_exporter_scrapes_total' |
	jq -c '[.data.result[] | {format: .metric.format, scrapes: .value[1]}]')
[ "$(query 'fpu_exporter_scrapes_total{format="openmetrics"} > 0')" = 1 ] ||
	fail "Prometheus did not scrape OpenMetrics: $om"
note "Prometheus scraped OpenMetrics ($om), target up, no scrape error"

# --- every recording and alerting rule evaluates without error
rules=$(curl -sf "$PROM/api/v1/rules") || fail "rules API"
total=$(jq '[.data.groups[].rules[]] | length' <<<"$rules")
bad=$(jq -r '.data.groups[].rules[] | select(.health != "ok") | "\(.name): \(.health) \(.lastError)"' <<<"$rules")
[ "$total" = "$(grep -cE '^\s+- (record|alert):' "$RULES")" ] || fail "Prometheus loaded $total rules"
[ -z "$bad" ] || fail "rules failing: $bad"
jq -r '.data.groups[].rules[].query' <<<"$rules" >"$WORK/rule_exprs"
while read -r expr; do query "$expr" >/dev/null; done <"$WORK/rule_exprs"
note "$total rules evaluate"

# --- every metric name the dashboard and rules use is one the daemon exports or a rule records
scrape >"$WORK/m"
recorded=$(grep -oE 'record: [a-z_:0-9]+' "$RULES" | cut -d' ' -f2)
for name in $(cut -f2 "$WORK/queries" | cat - "$WORK/rule_exprs" | sed 's/"[^"]*"//g' | grep -oE '\b(fpu_[a-z0-9_]+|instance_[a-z_]+:[a-z0-9_:]+)' | sort -u); do
	grep -q "^# TYPE $name " "$WORK/m" || grep -qx "$name" <<<"$recorded" ||
		fail "metric $name is used but neither exported nor recorded"
done
