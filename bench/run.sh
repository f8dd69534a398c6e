#!/usr/bin/env bash
# The benchmark (`make bench`; never part of `make test`). About two minutes:
#   1. bench/workloads.py   steady-state sync requests W1..W3 -> bench/results/workloads/
#   2. bench/inprocess.py   desired_state next to the JSON floor (orjson loads + dumps)
#   3. bench/over_http.py   wrk against the hook, its core alone and a bare Flask app, same gunicorn settings
#   4. bench/calls.py       CPU per call (/sync 304 and 200, /discover steady, refused, not ready) vs bare Flask
#   5. bench/declared.py    DittoFS requests and hook CPU per polling interval, 1, 10, 100 declared shares and users
#   6. bench/report.py      markdown tables and the budget per server -> stdout and bench/results/latest.md
# Everything generated lives in bench/results/ (gitignored). Only 127.0.0.1 is used.
# BENCH_HTTP="w1:6 w3:3" (the default) chooses the HTTP workloads and run seconds; BENCH_HTTP= skips HTTP.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=bench/results
HTTP_WORKLOADS=${BENCH_HTTP-w1:6 w3:3}

if [ ! -x .venv/bin/gunicorn ]; then
    make .venv/.installed-test
fi
if [ -n "$HTTP_WORKLOADS" ] && ! command -v wrk >/dev/null 2>&1; then
    echo "bench: installing wrk" >&2
    if ! apt-get install -y -qq wrk >/dev/null; then
        apt-get update -qq && apt-get install -y -qq wrk >/dev/null
    fi
fi

mkdir -p "$OUT"
rm -f "$OUT/http.json" "$OUT/calls.json" "$OUT/declared.json"
"$PY" -m bench.workloads "$OUT/workloads"
"$PY" -m bench.inprocess --workloads "$OUT/workloads" --json "$OUT/inprocess.json"
if [ -n "$HTTP_WORKLOADS" ]; then
    args=()
    for w in $HTTP_WORKLOADS; do args+=(--workload "$w"); done
    "$PY" -m bench.over_http --workloads "$OUT/workloads" --json "$OUT/http.json" "${args[@]}"
    "$PY" -m bench.calls --workloads "$OUT/workloads" --json "$OUT/calls.json"
    "$PY" -m bench.declared --json "$OUT/declared.json"
fi
echo
"$PY" -m bench.report "$OUT/inprocess.json" "$OUT/http.json" "$OUT/calls.json" "$OUT/declared.json" | tee "$OUT/latest.md"
