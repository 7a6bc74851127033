#!/usr/bin/env bash
# Where a send's CPU goes: the relay's CPU per accepted send, and each thread's share of the
# run (running, and waiting for a CPU: /proc/<pid>/task/*/schedstat) under the same wrk load
# as bench/send.sh. Needs wrk. Usage: bench/send_cpu.sh [SECONDS=6] [CONNECTIONS=64]
# (REFLECTO_BIN as for bench/send.sh; TMPDIR=/dev/shm keeps the store off the disk's syncs.)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-6}"; conns="${2:-64}"
source bench/relay.sh

threads() { for t in /proc/"$pid"/task/*; do echo "$(tr ' ' _ < "$t/comm") $(cat "$t/schedstat")"; done; }
threads > "$dir/before"
wrk -t2 -c"$conns" -d"${secs}s" -s "$dir/send.lua" "http://127.0.0.1:$port/v1/send" > "$dir/wrk"
threads > "$dir/after"
accepted=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^reflecto_sends_accepted_total/ {print $2}')
python3 - "$dir/before" "$dir/after" "$secs" "$accepted" <<'PY'
import collections, sys
def load(path):
    total = collections.defaultdict(lambda: [0, 0])
    for line in open(path):
        name, run, wait, _ = line.split()
        total[name][0] += int(run); total[name][1] += int(wait)
    return total
before, after = load(sys.argv[1]), load(sys.argv[2])
secs, sends = float(sys.argv[3]), int(float(sys.argv[4]))
cpu = 0
print(f"{sends} sends in {secs:.0f}s ({sends / secs:.0f}/s)")
for name in sorted(after):
    run = (after[name][0] - before[name][0]) / 1e9
    wait = (after[name][1] - before[name][1]) / 1e9
    cpu += run
    if run > 0.01 * secs:
        print(f"  {name:24s} running {run / secs:6.1%}  waiting for a CPU {wait / secs:6.1%}  {run * 1e6 / sends:6.1f} us/send")
print(f"  relay CPU per send: {cpu * 1e6 / sends:.1f} us")
PY
