#!/usr/bin/env bash
# Gate a CI job on latency: exit 1 when the candidate model's paired median ratio to the
# baseline has a 95% interval that excludes 1 and exceeds 1 + GATE_SLOWER (default 3%). The
# baseline is an artifact (a model file), re-measured now beside the candidate, interleaved in
# randomised rounds in one process, and the decision is on the paired per-round ratios: on a
# shared CI runner whose speed moves 10-25% between sessions, a comparison with a result saved
# last week cannot see 3%.
#
#   examples/ci_gate.sh baseline.onnx candidate.onnx
#
# GATE_SLOWER: the slowdown allowed, with its % sign (3%; a bare 3 is refused, exit 2).
# GATE_TIME: timed seconds per model (default 8; the gate takes about 2.4x this in all).
# GATE_STATISTIC: median (default), p90, p99 or mean.
# GATE_SEED: the seed of the round order (default: a fresh one, printed in the log and saved in
# the JSON; give the printed one to repeat a run's order).
# The log shows the table, the seed and the rule ("fails when the interval excludes 1 and the
# ratio exceeds 1.030"), so a wrong threshold shows there.
set -euo pipefail
base=${1:?baseline model}
new=${2:?candidate model}
out=${GATE_JSON:-$(mktemp -d)/gate.json}
inferspeed gate "$base" "$new" --threads 1 --max-time "${GATE_TIME:-8}" \
    --statistic "${GATE_STATISTIC:-median}" --fail-if-slower "${GATE_SLOWER:-3%}" \
    ${GATE_SEED:+--seed "$GATE_SEED"} --json "$out"
