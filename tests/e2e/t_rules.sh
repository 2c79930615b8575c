#!/bin/bash
# t_rules.sh: the recording rules and alerts pass promtool check and their promtool unit tests; configs parse.
. "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null || skip_or_fail "promtool is not installed"
promtool check rules "$ROOT/dashboards/rules.yml" || fail "promtool check rules"
(cd "$ROOT/tests/rules" && promtool test rules rules_test.yml) || fail "promtool test rules"
# The shipped scrape configuration, with the rules where it expects them.
sed "s|/etc/prometheus/fpu_exporter.rules.yml|$ROOT/dashboards/rules.yml|" "$ROOT/config/prometheus.yml" \
	>"$WORK/prometheus.yml"
promtool check config "$WORK/prometheus.yml" || fail "promtool check config config/prometheus.yml"
# The ConfigMap's configuration is one the daemon accepts.
awk '/fpu_exporter.yaml: \|/ { on = 1; next } on { sub(/^    /, ""); print }' "$ROOT/config/kubernetes.yaml" \
	>"$WORK/k8s.yaml"
out=$("$EXPORTER" --check-config --config.file="$WORK/k8s.yaml" 2>&1)
[ "$out" = "configuration OK" ] || fail "the DaemonSet's configuration: $out"
