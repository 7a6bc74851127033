#!/usr/bin/env bash
# Receiver benchmark on a release build: send → the `Notify` call on D-Bus, over N sends
# through a real relay to a real `reflecto listen` showing them on a real notification daemon
# (dunst on Xvfb, in a private D-Bus session), and the listener's resident memory when idle.
# Needs dbus, dunst, xvfb (apt-get install dbus dunst xvfb xauth). Usage:
#   bench/listen.sh [SENDS=200] [INTERVAL_MS=100]     (DUNSTRC=FILE: dunst's config; SERIES=1: every latency;
#                                                      REFLECTO_BIN=FILE: that binary, unbuilt, e.g. a before/after)
# Method: `dbus-monitor` records each Notify method call with its bus timestamp; the sender
# records the wall-clock time just before each POST /v1/send (sequential, INTERVAL_MS apart,
# each message body carries its index). Latency = monitor time − send time, same clock.
# dunst answers a Notify in ~30 ms, and in seconds with ~100 notifications on screen (its default
# configuration keeps each 10 s, so the default 200 sends 100 ms apart get there); `listen` does
# not wait for an answer before the next call, so the figure is listen's own latency.
set -euo pipefail
cd "$(dirname "$0")/.."
sends="${1:-200}"; interval="${2:-100}"
for tool in dbus-run-session dbus-monitor Xvfb dunst; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is needed (apt-get install dbus dunst xvfb xauth)" >&2; exit 2; }
done
if [ -n "${REFLECTO_BIN:-}" ]; then
  bin=$(realpath "$REFLECTO_BIN")
else
  cargo build --release --locked -q
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/reflecto"
fi
dir=$(mktemp -d); trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$bin" admin --data-dir "$dir/relay" user add bench >/dev/null
token=$("$bin" admin --data-dir "$dir/relay" token create --user bench --label bench 2>/dev/null)
code=$("$bin" admin --data-dir "$dir/relay" pair --user bench 2>/dev/null)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '[limits]\ntoken_burst = 0\ntoken_monthly = 0\nreceiver_daily = 0\nip_minute = 0\nip_hour = 0\n' > "$dir/relay.toml"
REFLECTO_LOG=warn "$bin" serve --config "$dir/relay.toml" --data-dir "$dir/relay" --listen "127.0.0.1:$port" 2>"$dir/relay.log" &
pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health/live" >/dev/null && break; sleep 0.1; done

export BIN="$bin" DIR="$dir" URL="http://127.0.0.1:$port" TOKEN="$token" CODE="$code" SENDS="$sends" INTERVAL_MS="$interval"
export REFLECTO_CONFIG_DIR="$dir/config" XDG_DATA_HOME="$dir/data"
unset DBUS_SESSION_BUS_ADDRESS DISPLAY
dbus-run-session -- bash -c '
  set -e
  Xvfb :89 -screen 0 640x480x24 -nolisten tcp >/dev/null 2>&1 & X=$!
  export DISPLAY=:89
  for _ in $(seq 100); do [ -e /tmp/.X11-unix/X89 ] && break; sleep 0.05; done
  dunst ${DUNSTRC:+-config "$DUNSTRC"} >/dev/null 2>&1 & D=$!
  for _ in $(seq 100); do dbus-send --session --dest=org.freedesktop.DBus --print-reply /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.Notifications 2>/dev/null | grep -q true && break; sleep 0.05; done
  "$BIN" pair "$CODE" --server "$URL" --label bench-desk >/dev/null 2>"$DIR/pair.log"
  dbus-monitor --session "type=method_call,interface=org.freedesktop.Notifications,member=Notify" > "$DIR/monitor.log" 2>/dev/null & M=$!
  "$BIN" listen >/dev/null 2>"$DIR/listen.log" & L=$!
  sleep 2
  rss_idle=$(awk "/VmRSS/ {print \$2}" /proc/$L/status)
  python3 bench/listen_send.py > "$DIR/sends.log"
  sleep 2
  rss_after=$(awk "/VmRSS/ {print \$2}" /proc/$L/status)
  sleep 12   # the blocking pool and idle connections wind down
  rss_settled=$(awk "/VmRSS/ {print \$2}" /proc/$L/status)
  echo "listen RSS: ${rss_idle} kB idle after connecting, ${rss_after} kB right after the sends, ${rss_settled} kB settled"
  kill -TERM $L; wait $L || true
  kill $M $D $X 2>/dev/null || true
'
python3 bench/listen_send.py --report "$dir/sends.log" "$dir/monitor.log"
