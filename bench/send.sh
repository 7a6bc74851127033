#!/usr/bin/env bash
# Load benchmark of POST /v1/send on a release build, next to GET /health/live of the same
# relay in the same run. Needs wrk (apt-get install wrk). Usage:
#   bench/send.sh [SECONDS=10] [CONNECTIONS=64]
# REFLECTO_BIN=path runs that binary instead of building this checkout (to compare two builds
# back to back in the same session).
# Prints requests/s and p50/p99 latency for both, the accepted-send count from /metrics, and
# checks that every accepted send is committed in the store.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"; conns="${2:-64}"
source bench/relay.sh

wrk -t2 -c"$conns" -d2s --latency "http://127.0.0.1:$port/health/live" >/dev/null   # warm up
health=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port/health/live")
send=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$dir/send.lua" "http://127.0.0.1:$port/v1/send")
echo "reflecto $("$bin" --version | cut -d' ' -f2), $(nproc) cores, $conns connections, ${secs}s each"
summary "GET /health/live" "$health"
summary "POST /v1/send" "$send"
accepted=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^reflecto_sends_accepted_total/ {print $2}')
committed=$(python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute('select count(*) from messages').fetchone()[0], c.execute('select count(*) from jobs').fetchone()[0])" "$dir/reflecto.db")
echo "accepted sends: $accepted; committed messages, jobs: $committed"
