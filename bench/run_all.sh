#!/usr/bin/env bash
# The measurements of docs/performance.md, in the order they were taken (~40 min on 2
# cores). Results are appended to bench/results/runs.jsonl with the label $1 (default
# "final"); `.venv/bin/python -m bench.run table --label final` prints the tables.
# BEFORE_TREE=/tmp/bench-before (made by `git archive REV | tar -x -C /tmp/bench-before`, REV the tree to compare)
# adds the chat as it was before the optimization commits, at scenario 2, 1:1.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
L=${1:-final}
Q="--quiet-wait 20 --quiet-limit 30"
# the key ratio: one daphne + Redis, 1:1; both boundary runs repeated twice
$PY -m bench.run sweep --label "$L" $Q --duration 8 --warmup 2 --drain 4 \
  --scenario 2 --k 2 --rates 200 300 400 500 600 700 800 --confirm 2
T="--duration 6 --warmup 2 --drain 3 --attempts 2"
$PY -m bench.run sweep --label "$L" $Q $T --scenario 2 --k 20 --rates 25 50 75 100
$PY -m bench.run sweep --label "$L" $Q $T --scenario 3 --k 2 --rates 200 300 400 500
# two workers against one in the same shape (nginx, PostgreSQL): CPU per message per worker
$PY -m bench.run sweep --label "$L" $Q $T --scenario 3 --k 2 --rates 200 --workers 1 --tag=-w1
$PY -m bench.run sweep --label "$L" $Q $T --scenario 3 --k 2 --rates 200 --workers 2 --tag=-w2
# idle: daphne with the systemd unit's flags; then with the browser's 25 s keep-alive
$PY -m bench.run idle --label "$L" $Q --scenario 2 --sockets 10000 --hold 60 --targets chat \
  --unit-daphne
$PY -m bench.run idle --label "$L" $Q --scenario 2 --sockets 10000 --hold 60 --targets chat \
  --unit-daphne --idle-ping 25 --tag=-ping25
$PY -m bench.run big-group --label "$L" $Q --scenario 2 --members 500 --rate 1 --duration 10
if [ -n "${BEFORE_TREE:-}" ]; then
  $PY -m bench.run sweep --label "$L-before" $Q $T --scenario 2 --k 2 --targets chat \
    --rates 200 250 300 400 --server-tree "$BEFORE_TREE"
fi
$PY -m bench.run sweep --label "$L" $Q $T --scenario 1 --k 2 --rates 200 400 600 800
$PY -m bench.run sweep --label "$L" $Q $T --scenario 3 --k 20 --rates 25 50 75
$PY -m bench.run sweep --label "$L" $Q $T --scenario 1 --k 20 --rates 25 50 75
$PY -m bench.run table --label "$L"
