#!/usr/bin/env bash
# .ci/run on fresh clones of this repository's HEAD, N times in a row, while a CPU-bound process
# runs throughout (as on a shared CI runner): the check that the tests wait for the events their
# child processes report (INFERSPEED_EVENTS, a pipe, the JSONL), not for fixed sleeps. Prints
# each run's exit status and wall time, and the test suite's own time.
#   bash bench/ci_under_load.sh [N] [WORKDIR]
set -uo pipefail
runs="${1:-3}"
work="${2:-$(mktemp -d)}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
python3 -c "while True: pass" &
hog=$!
trap 'kill $hog 2>/dev/null' EXIT
status=0
for i in $(seq 1 "$runs"); do
  rm -rf "$work/clone$i"
  git clone --quiet "$repo" "$work/clone$i"
  start=$(date +%s)
  (cd "$work/clone$i" && CI=true bash .ci/run) >"$work/ci$i.log" 2>&1 </dev/null
  rc=$?
  end=$(date +%s)
  suite=$(grep -E "[0-9]+ passed.* in [0-9.]+s" "$work/ci$i.log" | head -1 | tr -d "=")
  echo "run $i: exit $rc, $((end - start)) s wall; pytest: ${suite:-?}  (log: $work/ci$i.log)"
  [ "$rc" -eq 0 ] || status=1
done
exit $status
