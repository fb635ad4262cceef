#!/usr/bin/env bash
# Gate a CI job on latency: exit 1 when the candidate model is significantly slower than the
# baseline by more than 5%. Both are measured interleaved in one run (A B A B ...: the robust
# way on shared CI machines, whose speed changes from second to second), then gated by
# compare on the saved results. --force: the two files are different models on purpose.
#
#   examples/ci_gate.sh baseline.onnx candidate.onnx
set -euo pipefail
base=${1:?baseline model}
new=${2:?candidate model}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
inferspeed run "$base" "$new" --threads 1 --max-time "${GATE_TIME:-3}" --json "$out/both.json" --quiet
inferspeed compare "$out/both.json" --fail-if-slower 5% --force
