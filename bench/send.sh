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
command -v wrk >/dev/null || { echo "bench: wrk is needed (apt-get install wrk)" >&2; exit 2; }
if [ -n "${REFLECTO_BIN:-}" ]; then
  bin=$REFLECTO_BIN
else
  cargo build --release --locked -q
  bin=target/release/reflecto
fi
dir=$(mktemp -d); trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$bin" admin --data-dir "$dir" user add bench >/dev/null
"$bin" admin --data-dir "$dir" device add --user bench --label phone --type android --fcm-token fcm-bench >/dev/null
token=$("$bin" admin --data-dir "$dir" token create --user bench --label bench 2>/dev/null)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REFLECTO_LOG=warn "$bin" serve --data-dir "$dir" --listen "127.0.0.1:$port" \
  --limit-token-burst 0 --limit-token-monthly 0 --limit-receiver-daily 0 --limit-ip-minute 0 --limit-ip-hour 0 2>"$dir/relay.log" &
pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health/live" >/dev/null && break; sleep 0.1; done

cat > "$dir/send.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"message":"Backup done","priority":"high","tags":["ops"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA
summary() { # name, wrk output
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$2")
  p50=$(awk '$1=="50%" {print $2}' <<<"$2"); p99=$(awk '$1=="99%" {print $2}' <<<"$2")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$2"); non2xx=${non2xx:-0}
  printf '%-22s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$1" "$rps" "$p50" "$p99" "$non2xx"
}
wrk -t2 -c"$conns" -d2s --latency "http://127.0.0.1:$port/health/live" >/dev/null   # warm up
health=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port/health/live")
send=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$dir/send.lua" "http://127.0.0.1:$port/v1/send")
echo "reflecto $("$bin" --version | cut -d' ' -f2), $(nproc) cores, $conns connections, ${secs}s each"
summary "GET /health/live" "$health"
summary "POST /v1/send" "$send"
accepted=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^reflecto_sends_accepted_total/ {print $2}')
committed=$(python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute('select count(*) from messages').fetchone()[0], c.execute('select count(*) from jobs').fetchone()[0])" "$dir/reflecto.db")
echo "accepted sends: $accepted; committed messages, jobs: $committed"
