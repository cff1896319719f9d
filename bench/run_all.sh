#!/usr/bin/env bash
# Every measurement of docs/performance.md, in order (about 35 minutes on 2 cores).
# Results are appended to bench/results/runs.jsonl with the label $1 (default "final");
# `.venv/bin/python -m bench.run table --label final` prints the tables.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
L=${1:-final}
Q="--quiet-wait 20 --quiet-limit 30"
T="--duration 8 --warmup 2 --drain 4"
# BEFORE_TREE=/tmp/bench-before (from `git archive f1516a8 | tar -x -C /tmp/bench-before`)
# adds the chat as it was before the optimizations, at s2 k=2.
# the key ratio first: one daphne + Redis, 1:1; both boundary runs repeated twice
$PY -m bench.run sweep --label "$L" $Q $T --scenario 2 --k 2 --rates 100 150 200 250 300 400 --confirm 2
# "before": the server as it was before the optimization commits (git archive f1516a8)
if [ -n "${BEFORE_TREE:-}" ]; then
  $PY -m bench.run sweep --label "$L-before" $Q $T --scenario 2 --k 2 --targets chat \
    --rates 50 100 150 200 --server-tree "$BEFORE_TREE"
fi
$PY -m bench.run sweep --label "$L" $Q $T --scenario 2 --k 20 --rates 25 40 50 62 75 100
$PY -m bench.run sweep --label "$L" $Q $T --scenario 3 --k 2 --rates 100 150 200 250 300 400
$PY -m bench.run sweep --label "$L" $Q $T --scenario 1 --k 2 --rates 100 200 300 400 500
$PY -m bench.run sweep --label "$L" $Q $T --scenario 3 --k 20 --rates 25 50 75 100
$PY -m bench.run sweep --label "$L" $Q $T --scenario 1 --k 20 --rates 25 50 75 100
$PY -m bench.run big-group --label "$L" $Q --scenario 2 --members 500 --rate 1
$PY -m bench.run idle --label "$L" $Q --scenario 2 --sockets 10000 --hold 20
$PY -m bench.run table --label "$L"
