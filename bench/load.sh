#!/usr/bin/env bash
# Sustained load (wrk, 60 s at 64 keep-alive connections) and a graceful-shutdown check against
# the hook server started exactly as `make serve` starts it. Not part of `make test`.
#
#   bash bench/load.sh [--duration 60] [--connections 64]
#
# Results: bench/results/load.md (the table), load-wrk.txt, load-shutdown-wrk.txt,
# load-memory.json, load-server.log. Everything stays on 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/gunicorn ]; then
    make .venv/.installed-test
fi

if ! command -v wrk >/dev/null 2>&1; then
    echo "wrk is missing; installing the Debian package" >&2
    apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }
fi

exec .venv/bin/python bench/load.py "$@"
