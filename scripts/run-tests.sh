#!/usr/bin/env bash
# Runs the whole test suite in stages, each under its own time budget:
#   1. unit: pytest -m "not browser and not load" over tests/ on UNIT_WORKERS pytest-xdist
#      workers (default 2; 0 runs one process), each test file on one worker as a whole
#      (a module's shared live stack starts once); tests/support/scheduling.py starts the
#      slowest files first.
#   2. unit-load: pytest -m "not browser and load", alone: the tests that measure
#      throughput or latency (exit 5, none selected, counts as success).
#   js: node --test over the test files in tests/js/ (skipped if there are none), run
#      beside stage 1 (it takes seconds); its output is printed after stage 1's.
#   3. browser: pytest -m browser in its own process (Playwright's sync fixtures break
#      pytest-asyncio tests that run after them), on BROWSER_WORKERS xdist workers
#      (default 2, each with its own shared stack and Chromium; 0 runs one process);
#      exit 5 (no tests) counts as success.
# Every stage runs even if an earlier one failed. Ends with one summary line
# "total: N passed, N failed, N skipped" and exits non-zero if any stage failed.
# Extra arguments go to every pytest run. Budgets (seconds): UNIT_BUDGET, LOAD_BUDGET,
# JS_BUDGET, BROWSER_BUDGET.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
# Measured on this 2-core machine, idle: unit 648 s, unit-load 154 s, browser 509 s
# (two workers each; the browser stage took about 790 s in one process).
UNIT_BUDGET=${UNIT_BUDGET:-860}
UNIT_WORKERS=${UNIT_WORKERS:-2}
LOAD_BUDGET=${LOAD_BUDGET:-240}
JS_BUDGET=${JS_BUDGET:-60}
BROWSER_BUDGET=${BROWSER_BUDGET:-660}
BROWSER_WORKERS=${BROWSER_WORKERS:-2}
# The fuzzers' case counts in this run (lean for CI); `make adversarial` keeps the full
# counts of tests/adversarial/test_fuzz*.py. Set any of them to change it.
export FUZZ_WS_FRAMES=${FUZZ_WS_FRAMES:-4000}
export FUZZ_HTTP_BODIES=${FUZZ_HTTP_BODIES:-1200}
export FUZZ_LIVE_WS_FRAMES=${FUZZ_LIVE_WS_FRAMES:-800}
export FUZZ_LIVE_HTTP_BODIES=${FUZZ_LIVE_HTTP_BODIES:-700}

reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
failed=()

# stage NAME BUDGET OK_CODES CMD...: runs CMD under `timeout`, records a failure
# unless its exit code is in OK_CODES (space-separated).
stage() {
    local name=$1 budget=$2 ok=$3
    shift 3
    echo
    echo "=== $name (budget ${budget}s): $*"
    timeout --foreground --kill-after=30 "$budget" "$@"
    local rc=$?
    if [[ " $ok " == *" $rc "* ]]; then
        echo "=== $name: ok (exit $rc)"
    else
        [ "$rc" = 124 ] && echo "=== $name: TIMED OUT after ${budget}s"
        echo "=== $name: FAILED (exit $rc)"
        failed+=("$name")
        echo "$rc" >"$reports/$name.failed"
    fi
}

js_files=()
if [ -d tests/js ]; then
    # node's own default test-file patterns, found here so any node version accepts them.
    mapfile -t js_files < <(find tests/js -type f \( -name '*.test.js' -o -name '*.test.mjs' \
        -o -name '*.test.cjs' -o -name '*-test.js' -o -name '*-test.mjs' -o -name '*_test.js' \
        -o -name '*_test.mjs' -o -name 'test-*.js' -o -name 'test-*.mjs' -o -name 'test.js' \
        -o -name 'test.mjs' \) -not -path '*/node_modules/*' | sort)
fi
js_pid=
if [ ${#js_files[@]} -gt 0 ]; then
    # Beside the unit stage; `stage` records a failure in $reports/js.failed.
    stage js "$JS_BUDGET" "0" node --test \
        --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=tap --test-reporter-destination="$reports/js.tap" "${js_files[@]}" \
        >"$reports/js.log" 2>&1 &
    js_pid=$!
fi

xdist=()
if [ "$UNIT_WORKERS" != 0 ]; then
    xdist=(-n "$UNIT_WORKERS" --dist loadfile --no-loadscope-reorder)
fi
stage unit "$UNIT_BUDGET" "0" \
    "$PY" -m pytest -m "not browser and not load" "${xdist[@]}" -rfEs --durations=10 \
    --junitxml="$reports/unit.xml" tests/ "$@"
stage unit-load "$LOAD_BUDGET" "0 5" \
    "$PY" -m pytest -m "not browser and load" -rfEs --durations=10 \
    --junitxml="$reports/unit-load.xml" tests/ "$@"

if [ -n "$js_pid" ]; then
    wait "$js_pid"
    cat "$reports/js.log"
    [ -e "$reports/js.failed" ] && failed+=(js)
else
    echo
    echo "=== js: no test files under tests/js, skipped"
fi

browser_xdist=()
if [ "$BROWSER_WORKERS" != 0 ]; then
    browser_xdist=(-n "$BROWSER_WORKERS" --dist loadfile --no-loadscope-reorder)
fi
stage browser "$BROWSER_BUDGET" "0 5" \
    "$PY" -m pytest -m browser "${browser_xdist[@]}" -rfEs --durations=10 \
    --junitxml="$reports/browser.xml" tests/ "$@"

echo
"$PY" scripts/test_summary.py "$reports"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED stages: ${failed[*]}"
    exit 1
fi
