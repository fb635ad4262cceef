#!/usr/bin/env bash
# Gate a CI job on latency: exit 1 when the candidate model is significantly slower than the
# baseline by more than GATE_SLOWER (default 3%). The baseline is an artifact (a model file),
# re-measured now beside the candidate, interleaved in randomised rounds in one process, and
# the decision is on the paired per-round ratios: on a shared CI runner whose speed moves
# 10-25% between sessions, a comparison with a result saved last week cannot see 3%.
#
#   examples/ci_gate.sh baseline.onnx candidate.onnx
#
# GATE_TIME: timed seconds per model (default 8; the gate takes about 2.4x this in all).
# GATE_STATISTIC: median (default), p90, p99 or mean.
set -euo pipefail
base=${1:?baseline model}
new=${2:?candidate model}
out=${GATE_JSON:-$(mktemp -d)/gate.json}
inferspeed gate "$base" "$new" --threads 1 --max-time "${GATE_TIME:-8}" \
    --statistic "${GATE_STATISTIC:-median}" --fail-if-slower "${GATE_SLOWER:-3%}" --json "$out" --quiet
