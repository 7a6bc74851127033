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
summary_width=30
source bench/relay.sh

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

run() { wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$1" "http://127.0.0.1:$port$2"; }
run "$dir/send.lua" /v1/send >/dev/null   # warm up
send=$(run "$dir/send.lua" /v1/send)
send_key=$(run "$dir/send_key.lua" /v1/send)
hook=$(run "$dir/hook.lua" /v1/hooks/alertmanager)
echo "reflecto $("$bin" --version | cut -d' ' -f2), $(nproc) cores, $conns connections, ${secs}s each"
summary "POST /v1/send" "$send"
summary "POST /v1/send (with key)" "$send_key"
summary "POST /v1/hooks/alertmanager" "$hook"
