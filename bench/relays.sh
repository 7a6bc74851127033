#!/usr/bin/env bash
# Load benchmark of POST /v1/send per store, in one run on a release build (issue 12, SPEC §3):
#   (a) one relay on SQLite (the default store, in a data dir),
#   (b) one relay on PostgreSQL,
#   (c) two relays on one PostgreSQL database, the load split evenly over both.
# Needs wrk and PostgreSQL (apt-get install wrk postgresql); --perf also needs perf.
# Usage:
#   bench/relays.sh [--perf] [SECONDS=10] [CONNECTIONS=64]
#   REFLECTO_BENCH_BASELINE=path/to/older/reflecto adds case (a0): SQLite on that build, same run.
# Each case gets a fresh store (for PostgreSQL: a fresh database on one throwaway cluster), a
# 2 s warm-up, then SECONDS of wrk with CONNECTIONS in total. Case (c) runs one wrk per relay at
# the same time with half the connections each; its req/s is the sum and its percentiles come
# from the two runs' latency distributions merged, not from averaging percentiles. After each
# case every send answered 200 must be committed in the store (see run_case for the exact check
# against /metrics). Rows print as each case ends; the exit status is 1 if a check failed.
#
# The cluster is created as the tests do (src/pg_cluster.rs; under root through runuser), but
# durable like the SQLite store it is compared with: SQLite runs WAL with synchronous=NORMAL (a
# commit survives a crash of the relay, not of the machine), so PostgreSQL keeps fsync on and
# runs synchronous_commit=off, which promises the same. REFLECTO_BENCH_PG_SYNC=on measures
# PostgreSQL's own default (every commit flushed) instead.
#
# --perf adds one more PostgreSQL run of case (b) under `perf record -a -g` (after the measured
# run, so the figures above are unprofiled) and prints where the CPU went: per process, then the
# relay's hottest symbols. The binary is then built with symbols (same code, not stripped).
set -euo pipefail
cd "$(dirname "$0")/.."

perf=0; positional=()
for arg in "$@"; do
  case "$arg" in
    --perf) perf=1 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench: unknown option $arg (see --help)" >&2; exit 2 ;;
    *) positional+=("$arg") ;;
  esac
done
secs="${positional[0]:-10}"; conns="${positional[1]:-64}"
pg_sync="${REFLECTO_BENCH_PG_SYNC:-off}"
(( conns >= 2 && conns % 2 == 0 )) || { echo "bench: CONNECTIONS must be even (split over two relays)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "bench: wrk is needed (apt-get install wrk)" >&2; exit 2; }
pgbin="${REFLECTO_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
[[ -x "$pgbin/initdb" && -x "$pgbin/pg_ctl" && -x "$pgbin/psql" ]] \
  || { echo "bench: PostgreSQL is needed (apt-get install postgresql, or set REFLECTO_PG_BIN)" >&2; exit 2; }
if (( perf )); then
  command -v perf >/dev/null || { echo "bench: --perf needs perf (apt-get install linux-perf)" >&2; exit 2; }
  # Symbols for perf's report; stripping changes no code.
  export CARGO_PROFILE_RELEASE_STRIP=false
fi
# The store is chosen on the command line below; nothing from the caller's environment.
unset REFLECTO_DATABASE_URL REFLECTO_DATA_DIR REFLECTO_CONFIG REFLECTO_LISTEN

cargo build --release --locked -q
load_before=$(cut -d' ' -f1-3 /proc/loadavg)   # the machine may be shared: say how busy it was
bin=target/release/reflecto
dir=$(mktemp -d)
pgdir=$(mktemp -d)   # its own dir: the postgres user cannot enter root's 0700 $dir
pids=()
as_postgres=()
if [[ $(id -u) == 0 ]]; then as_postgres=(runuser -u postgres --); chown postgres: "$pgdir"; fi
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ -f "$pgdir/data/postmaster.pid" ]]; then
    (cd "$pgdir" && "${as_postgres[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate -w stop >/dev/null 2>&1) || true
  fi
  rm -rf "$dir" "$pgdir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- the throwaway PostgreSQL cluster ------------------------------------------------------
pgport=$(free_port)
(cd "$pgdir" && "${as_postgres[@]}" "$pgbin/initdb" -D "$pgdir/data" -U postgres -A trust -E UTF8 \
  --locale=C --no-sync >/dev/null)
(cd "$pgdir" && "${as_postgres[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w start \
  -o "-c listen_addresses=127.0.0.1 -p $pgport -k $pgdir -c max_connections=300 -c synchronous_commit=$pg_sync" \
  >/dev/null) || { echo "bench: PostgreSQL did not start:" >&2; tail -20 "$pgdir/server.log" >&2; exit 1; }
psql_at() { "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -tA "$@"; }
pg_database() { # name → URL of a fresh database
  psql_at -c "create database $1" "postgres://postgres@127.0.0.1:$pgport/postgres" >/dev/null
  echo "postgres://postgres@127.0.0.1:$pgport/$1"
}

# --- relays ---------------------------------------------------------------------------------
# Each process gets its own HOME, so no config file or default data dir is shared by accident.
isolated() { # name, command…
  local home="$dir/home-$1"; shift
  mkdir -p "$home"
  HOME="$home" XDG_DATA_HOME="$home/data" XDG_CONFIG_HOME="$home/config" REFLECTO_LOG=warn "$@"
}
exec_isolated() { # the same, replacing the (sub)shell
  local home="$dir/home-$1"; shift
  mkdir -p "$home"
  HOME="$home" XDG_DATA_HOME="$home/data" XDG_CONFIG_HOME="$home/config" REFLECTO_LOG=warn exec "$@"
}
setup_store() { # store args… → $token
  isolated admin "$bin" admin "$@" user add bench >/dev/null
  isolated admin "$bin" admin "$@" device add --user bench --label phone --type android --fcm-token fcm-bench >/dev/null
  token=$(isolated admin "$bin" admin "$@" token create --user bench --label bench 2>/dev/null)
  [[ -n "$token" ]] || { echo "bench: no token from admin token create" >&2; exit 1; }
}
relay_pids=(); relay_ports=()
start_relay() { # name, store args…
  local name=$1; shift
  local port; port=$(free_port)
  # exec: $! is then the relay itself, for kill, wait and perf.
  (exec_isolated "$name" "$bin" serve "$@" --listen "127.0.0.1:$port" \
    --limit-token-burst 0 --limit-token-monthly 0 --limit-receiver-daily 0 \
    --limit-ip-minute 0 --limit-ip-hour 0 2>"$dir/$name.log") &
  local pid=$!
  pids+=("$pid"); relay_pids+=("$pid"); relay_ports+=("$port")
  for _ in $(seq 150); do
    curl -sf "http://127.0.0.1:$port/health/live" >/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench: relay $name did not come up; its log:" >&2; tail -20 "$dir/$name.log" >&2; exit 1
}
stop_relays() {
  for p in "${relay_pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  relay_pids=(); relay_ports=()
}
accepted() { # sum of reflecto_sends_accepted_total over the running relays
  local total=0 n
  for port in "${relay_ports[@]}"; do
    n=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^reflecto_sends_accepted_total/ {print $2}')
    total=$(( total + ${n:-0} ))
  done
  echo "$total"
}

# --- load -----------------------------------------------------------------------------------
# wrk's done() writes the run's counts and its latency at every 0.1 % of rank (Debian's wrk
# cannot index its raw histogram from Lua), so two concurrent runs merge into percentiles
# weighted by each run's requests, accurate to 0.1 % of rank.
cat > "$dir/send.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"message":"Backup done","priority":"high","tags":["ops"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
function done(summary, latency, requests)
  local e = summary.errors
  local f = assert(io.open(os.getenv("BENCH_OUT"), "w"))
  f:write(string.format("requests %d\nduration_us %d\nnon2xx %d\nsocket_errors %d\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout))
  for k = 1, 1000 do f:write(string.format("q %d\n", latency:percentile(k / 10))) end
  f:close()
end
LUA
load() { # case, phase, seconds → $dir/runs/<case>/<phase>.<i>.out, one wrk per running relay
  local name=$1 phase=$2 seconds=$3 n=${#relay_ports[@]} i wrk_pids=()
  mkdir -p "$dir/runs/$name"
  for i in "${!relay_ports[@]}"; do
    BENCH_TOKEN="$token" BENCH_OUT="$dir/runs/$name/$phase.$i.out" \
      wrk -t"$(( 2 / n > 0 ? 2 / n : 1 ))" -c"$(( conns / n ))" -d"${seconds}s" --latency \
      -s "$dir/send.lua" "http://127.0.0.1:${relay_ports[$i]}/v1/send" >"$dir/runs/$name/$phase.$i.wrk" &
    wrk_pids+=($!)
  done
  for p in "${wrk_pids[@]}"; do wait "$p"; done
}
# Prints one table row from the merged runs of a case.
summarize() { # case label, case name
  python3 - "$1" "$dir/runs/$2"/measured.*.out <<'PY'
import sys
label, files = sys.argv[1], sys.argv[2:]
points, rps, non2xx, errors = [], 0.0, 0, 0   # (latency µs, weight in requests)
for path in files:
    fields, quantiles = {}, []
    for line in open(path):
        key, value = line.split()
        if key == "q":
            quantiles.append(int(value))
        else:
            fields[key] = int(value)
    points += [(us, fields["requests"] / len(quantiles)) for us in quantiles]
    rps += fields["requests"] / (fields["duration_us"] / 1e6)
    non2xx += fields["non2xx"]; errors += fields["socket_errors"]
points.sort()
def pct(p):
    total, seen = sum(w for _, w in points), 0.0
    for us, weight in points:
        seen += weight
        if seen >= p / 100 * total - 1e-9:
            return us / 1000
    return float("nan")
print(f"{label:<34} {rps:>10.0f} {pct(50):>9.2f} {pct(99):>9.2f} {non2xx:>8} {errors:>7}")
PY
}

answered() { # sends answered 2xx in all wrk runs of a case so far
  cat "$dir/runs/$1"/*.out | awk '$1=="requests" {r+=$2} $1=="non2xx" {e+=$2} END {print r-e}'
}
failed=0
# Every send answered 200 must be committed: answered <= accepted (/metrics) <= committed. A
# send can also be committed without being answered or counted: wrk closes its connections
# mid-request when it stops, and the relay drops the request after the store took it. So
# committed may exceed accepted by at most the requests in flight when a wrk run stopped.
run_case() { # label, case name, committed-count command…
  local label=$1 name=$2; shift 2
  load "$name" warmup 2
  load "$name" measured "$secs"
  summarize "$label" "$name"
  local ans acc com in_flight=$(( 2 * conns ))
  ans=$(answered "$name"); acc=$(accepted); com=$("$@")
  local counts="answered 200: $ans, accepted (/metrics): $acc, committed: $com"
  if (( ans > 0 && ans <= acc && acc <= com && com - acc <= in_flight )); then
    echo "  committed: ok ($counts)"
  else
    echo "  committed: MISMATCH ($counts)"; failed=1
  fi
}

# Rows are printed as each case ends, so a failing case still leaves the ones before it.
echo "reflecto $("$bin" --version | cut -d' ' -f2), load average before the run $load_before, PostgreSQL" \
  "$("$pgbin/postgres" --version | awk '{print $3}') (synchronous_commit=$pg_sync), $(nproc) cores," \
  "$conns connections, ${secs}s per case"
printf '%-34s %10s %9s %9s %8s %7s\n' "POST /v1/send" "req/s" "p50 ms" "p99 ms" "non-2xx" "errors"

# (a) SQLite
sqlite_dir="$dir/sqlite"
setup_store --data-dir "$sqlite_dir"
start_relay sqlite --data-dir "$sqlite_dir"
sqlite_count() {
  python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from messages').fetchone()[0])" \
    "$sqlite_dir/reflecto.db"
}
run_case "(a) 1 relay, SQLite" sqlite sqlite_count
stop_relays

# (a0) the same with an earlier build, when given: SQLite must not regress.
if [[ -n "${REFLECTO_BENCH_BASELINE:-}" ]]; then
  current_bin=$bin; bin=$REFLECTO_BENCH_BASELINE
  sqlite_dir="$dir/sqlite-baseline"
  setup_store --data-dir "$sqlite_dir"
  start_relay sqlite-baseline --data-dir "$sqlite_dir"
  run_case "(a0) 1 relay, SQLite, baseline" sqlite-baseline sqlite_count
  stop_relays
  bin=$current_bin
fi

# (b) PostgreSQL, one relay
url_b=$(pg_database bench_one)
pg_count() { psql_at -c 'select count(*) from messages' "$1"; }
setup_store --database "$url_b"
start_relay pg-one --database "$url_b"
run_case "(b) 1 relay, PostgreSQL" pg-one pg_count "$url_b"
tidy_report() { grep -v -e '^#' -e '^$' | sed -e 's/[ -]*$//' | cut -c1-140; }
if (( perf )); then
  perf record -q -F 499 -a -g -o "$dir/perf.data" -- sleep "$secs" 2>/dev/null &
  perf_pid=$!
  load pg-one perf "$secs"
  wait "$perf_pid" || true
  relay_pid=${relay_pids[0]}
  {
    echo "Where the CPU went during a profiled run of case (b), by thread name, % of all samples"
    echo "(the relay's threads are tokio-rt-worker and its own; postgres is every backend):"
    perf report -i "$dir/perf.data" --stdio --no-children --sort comm -g none --percent-limit 1 2>/dev/null \
      | tidy_report | head -12
    echo
    echo "The relay's hottest symbols, self time, % of the relay's samples:"
    perf report -i "$dir/perf.data" --stdio --no-children --pid "$relay_pid" --percentage relative \
      --sort dso,symbol -g none --percent-limit 0.5 2>/dev/null | tidy_report | head -30
  } >"$dir/perf.txt"
fi
stop_relays

# (c) PostgreSQL, two relays on one database
url_c=$(pg_database bench_two)
setup_store --database "$url_c"
start_relay pg-two-a --database "$url_c"
start_relay pg-two-b --database "$url_c"
run_case "(c) 2 relays, one PostgreSQL" pg-two pg_count "$url_c"
stop_relays

if (( perf )); then echo; cat "$dir/perf.txt"; fi
exit "$failed"
