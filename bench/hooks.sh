#!/usr/bin/env bash
# What a hook costs (SPEC §1.18): POST /v1/hooks/alertmanager with a real two-alert group
# (tests/fixtures/hooks/alertmanager_firing.json: parse, map, cut, validate, and the group's
# key) next to POST /v1/send of a plain message and of the same message with a key, on one
# release-build relay in the same run. Needs wrk.
# Usage: bench/hooks.sh [SECONDS=10] [CONNECTIONS=64]
# REFLECTO_BIN=path runs that binary instead of building this checkout.
# Prints requests/s and p50/p99 latency of each, and checks every answer was a 200.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"; conns="${2:-64}"
command -v wrk >/dev/null || { echo "bench: wrk is needed (apt-get install wrk)" >&2; exit 2; }
if [ -n "${REFLECTO_BIN:-}" ]; then
  bin=$REFLECTO_BIN
else
  cargo build --release --locked -q
  bin=${CARGO_TARGET_DIR:-target}/release/reflecto
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

script() { # file, JSON body; each @N@ in it becomes a number unique to the request
  python3 - "$1" "$2" "$token" <<'PY'
import json, sys
path, body, token = sys.argv[1], sys.argv[2], sys.argv[3]
with open(path, "w") as f:
    f.write('wrk.method = "POST"\n')
    f.write('wrk.headers["Content-Type"] = "application/json"\n')
    f.write('wrk.headers["Authorization"] = "Bearer %s"\n' % token)
    f.write("local template = %s\n" % json.dumps(body))
    # One Lua state per wrk thread: the thread's number keeps the counters apart.
    f.write("local threads = 0\n")
    f.write("function setup(thread) thread:set('tid', threads); threads = threads + 1 end\n")
    f.write("local n = 0\n")
    f.write("function request()\n  n = n + 1\n")
    f.write("  local body = string.gsub(template, '@N@', tid .. '-' .. n)\n")
    f.write("  return wrk.format(nil, nil, nil, body)\nend\n")
PY
}
# Alertmanager sends one key per group, so a keyed send supersedes the group's last state:
# every request here is its own group (its own key), so what is measured is the cost of a
# hook, not of a key that thousands of earlier messages share.
script "$dir/send.lua" '{"message":"Disk /var on db-1 is 97% full","priority":"urgent","tags":["alertmanager","firing"]}'
script "$dir/send_key.lua" '{"message":"Disk /var on db-1 is 97% full","priority":"urgent","tags":["alertmanager","firing"],"key":"am:bench-@N@"}'
script "$dir/hook.lua" "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["groupKey"]="bench-@N@"; print(json.dumps(d))' tests/fixtures/hooks/alertmanager_firing.json)"

summary() { # name, wrk output
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$2")
  p50=$(awk '$1=="50%" {print $2}' <<<"$2"); p99=$(awk '$1=="99%" {print $2}' <<<"$2")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$2"); non2xx=${non2xx:-0}
  printf '%-30s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$1" "$rps" "$p50" "$p99" "$non2xx"
}
run() { wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$1" "http://127.0.0.1:$port$2"; }
run "$dir/send.lua" /v1/send >/dev/null   # warm up
send=$(run "$dir/send.lua" /v1/send)
send_key=$(run "$dir/send_key.lua" /v1/send)
hook=$(run "$dir/hook.lua" /v1/hooks/alertmanager)
echo "reflecto $("$bin" --version | cut -d' ' -f2), $(nproc) cores, $conns connections, ${secs}s each"
summary "POST /v1/send" "$send"
summary "POST /v1/send (with key)" "$send_key"
summary "POST /v1/hooks/alertmanager" "$hook"
