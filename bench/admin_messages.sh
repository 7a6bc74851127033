#!/usr/bin/env bash
# Latency of GET /v1/admin/messages (SPEC §1.19) on a store holding MESSAGES messages (default
# 100000, one delivery each: 90 % delivered, 10 % failed), on SQLite and on PostgreSQL.
# Needs PostgreSQL and curl. Usage:
#   bench/admin_messages.sh [MESSAGES=100000] [REQUESTS=300]
#   REFLECTO_BENCH_BIN=target/debug/reflecto measures another build (default: a release build).
# The messages are written straight into the store with SQL (sending 100 000 through the API
# would measure the send path, not this one); each query is then asked REQUESTS times, one at
# a time, and p50/p99 of curl's time_total are printed per query: the first page, the first
# page of one user's, a page deep in the store (`before` = the middle message), and the
# messages with a failed delivery (10 % of them).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100000}"; requests="${2:-300}"
pgbin="${REFLECTO_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
[[ -x "$pgbin/initdb" ]] || { echo "bench: PostgreSQL is needed (apt-get install postgresql)" >&2; exit 2; }
unset REFLECTO_DATABASE_URL REFLECTO_DATA_DIR REFLECTO_CONFIG REFLECTO_LISTEN REFLECTO_ADMIN_TOKEN
if [[ -n "${REFLECTO_BENCH_BIN:-}" ]]; then bin=$REFLECTO_BENCH_BIN; else cargo build --release --locked -q; bin=target/release/reflecto; fi
dir=$(mktemp -d); pgdir=$(mktemp -d); pids=()
as_postgres=()
if [[ $(id -u) == 0 ]]; then as_postgres=(runuser -u postgres --); chown postgres: "$pgdir"; fi
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -f "$pgdir/data/postmaster.pid" ]] && (cd "$pgdir" && "${as_postgres[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate -w stop >/dev/null 2>&1) || true
  rm -rf "$dir" "$pgdir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
admin() { HOME="$dir" REFLECTO_LOG=warn "$bin" admin "$@"; }

# One store: the user, a device, a sender token, an admin token; then the messages.
# $1: how to run SQL on it (a command reading SQL on stdin); the rest: the store's flags.
fill() {
  local sql=$1; shift
  admin "$@" user add bench >/dev/null
  admin "$@" user add other >/dev/null
  device=$(admin "$@" device add --user bench --label phone --type android --fcm-token f 2>/dev/null | head -1)
  admin "$@" token create --user bench --label bench >/dev/null 2>&1
  admin_token=$(admin "$@" token create --admin --label bench 2>/dev/null)
  local now; now=$(( $(date +%s) * 1000 ))
  # Messages one second apart ending now; every 7th is the other user's.
  $sql <<SQL
INSERT INTO messages (id, user_id, token_id, envelope, created_at, expires_at)
  SELECT 'msg_' || lpad(i::text, 16, '0'),
         (SELECT id FROM users WHERE name = CASE WHEN i % 7 = 0 THEN 'other' ELSE 'bench' END),
         (SELECT id FROM tokens LIMIT 1), NULL, $now - ($n - i) * 1000, $now + 86400000
  FROM $SERIES;
INSERT INTO jobs (message_id, device_id, device_type, state, run_at, expires_at, updated_at)
  SELECT id, '$device', 'android', CASE WHEN created_at % 10000 = 0 THEN 'failed' ELSE 'delivered' END,
         created_at, expires_at, created_at FROM messages;
SQL
}

measure() { # label, port
  local port=$1 mid
  mid=$(printf 'msg_%016d' $(( n / 2 )))
  for q in "" "?user=bench" "?before=$mid" "?state=failed" "?state=failed&user=other&limit=100"; do
    # A page that is not full would measure less work than asked for.
    local items
    items=$(curl -s -H "Authorization: Bearer $admin_token" "http://127.0.0.1:$port/v1/admin/messages$q" \
      | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
    [[ $items -ge 50 ]] || { echo "bench: $q answered $items messages" >&2; exit 1; }
    for _ in $(seq "$requests"); do
      curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $admin_token" \
        "http://127.0.0.1:$port/v1/admin/messages$q"
    done | sort -n | awk -v q="${q:-(first page)}" -v store="$store" '{ t[NR] = $1 * 1000 }
      END { printf "%-9s %-40s p50 %7.2f ms  p99 %7.2f ms  (%d requests)\n", store, q, t[int(NR*0.5)], t[int(NR*0.99)], NR }'
  done
}

serve() { # store flags… → $port
  port=$(free_port)
  (HOME="$dir" REFLECTO_LOG=warn exec "$bin" serve "$@" --listen "127.0.0.1:$port" \
    --limit-ip-minute 0 --limit-ip-hour 0 2>"$dir/serve.log") &
  pids+=("$!")
  for _ in $(seq 150); do curl -sf "http://127.0.0.1:$port/health/live" >/dev/null && return 0; sleep 0.1; done
  echo "bench: the relay did not come up:" >&2; tail "$dir/serve.log" >&2; exit 1
}

echo "GET /v1/admin/messages, $n messages, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $bin"
# --- SQLite ---------------------------------------------------------------------------------
store=sqlite
SERIES="(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $n) SELECT i FROM s)"
SERIES="$SERIES s"
# SQLite has no lpad: the same ids through printf.
sqlite_sql() { sed "s/'msg_' || lpad(i::text, 16, '0')/printf('msg_%016d', i)/" | sqlite3 "$dir/sqlite/reflecto.db"; }
mkdir -p "$dir/sqlite"
fill sqlite_sql --data-dir "$dir/sqlite"
serve --data-dir "$dir/sqlite"
measure "$port"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

# --- PostgreSQL -----------------------------------------------------------------------------
store=postgres
pgport=$(free_port)
(cd "$pgdir" && "${as_postgres[@]}" "$pgbin/initdb" -D "$pgdir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null)
(cd "$pgdir" && "${as_postgres[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w start \
  -o "-c listen_addresses=127.0.0.1 -p $pgport -k $pgdir" >/dev/null)
url="postgres://postgres@127.0.0.1:$pgport/postgres"
SERIES="generate_series(1, $n) i"
pg_sql() { "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 "$url" >/dev/null && "$pgbin/psql" -X -q -c "ANALYZE" "$url"; }
fill pg_sql --database "$url"
serve --database "$url" --data-dir "$dir/pgdata"
measure "$port"
