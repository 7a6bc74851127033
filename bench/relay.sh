# Sourced by the wrk benchmarks (bench/send.sh, bench/hooks.sh) from the checkout's root, after
# they set `secs` and `conns`: one relay with every rate limit off on a free port, a user
# `bench` with an android device and a token. The relay is this checkout's release build, or
# REFLECTO_BIN. Sets bin, dir (removed on exit, with the relay stopped), token and port, writes
# $dir/send.lua (wrk's POST of a plain send with the token), and defines
# `summary NAME WRK_OUTPUT` (NAME padded to summary_width, 22 unless set).
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
  printf "%-${summary_width:-22}s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n" "$1" "$rps" "$p50" "$p99" "$non2xx"
}
