#!/usr/bin/env bash
# The measurements of docs/performance.md, in the order they were taken (~40 min on 2
# cores). Results are appended to bench/results/runs.jsonl with the label $1 (default
# "final"); `.venv/bin/python -m bench.run table --label final` prints the tables.
# BEFORE_TREE=/tmp/bench-before (made by `git archive f1516a8 | tar -x -C /tmp/bench-before`)
# adds the chat as it was before the optimization commits, at scenario 2, 1:1.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
L=${1:-final}
Q="--quiet-wait 20 --quiet-limit 30"
# the key ratio: one daphne + Redis, 1:1; both boundary runs repeated twice
$PY -m bench.run sweep --label "$L" $Q --duration 8 --warmup 2 --drain 4 \
  --scenario 2 --k 2 --rates 100 150 200 250 300 400 500 600 --confirm 2
T="--duration 6 --warmup 2 --drain 3 --attempts 2"
$PY -m bench.run sweep --label "$L" $Q $T --scenario 2 --k 20 --rates 25 50 75 100
$PY -m bench.run sweep --label "$L" $Q $T --scenario 3 --k 2 --rates 100 200 300
$PY -m bench.run idle --label "$L" $Q --scenario 2 --sockets 10000 --hold 20 --targets chat
$PY -m bench.run big-group --label "$L" $Q --scenario 2 --members 500 --rate 1 --duration 6
if [ -n "${BEFORE_TREE:-}" ]; then
  $PY -m bench.run sweep --label "$L-before" $Q $T --scenario 2 --k 2 --targets chat \
    --rates 100 150 200 --server-tree "$BEFORE_TREE"
fi
$PY -m bench.run sweep --label "$L" $Q $T --scenario 1 --k 2 --rates 100 200 300 400
$PY -m bench.run sweep --label "$L" $Q $T --scenario 3 --k 20 --rates 25 50 75
$PY -m bench.run sweep --label "$L" $Q $T --scenario 1 --k 20 --rates 25 50 75
$PY -m bench.run table --label "$L"
