#!/usr/bin/env bash
# What a send writes to the embedded store's log: under the same wrk load as bench/send.sh, the
# relay is stopped (SIGSTOP) mid-run, its store and log copied, and each commit's WAL frames
# (one page each) counted by the table or index that owns the page (SQLite's `dbstat`).
# Prints frames per commit, about how many sends each commit held (the leaf pages of the
# messages' random id index it wrote: one per send, less the few sends that share a leaf) and
# the breakdown. Needs wrk and python3's sqlite3 with `dbstat` (Debian's has it).
# Usage: bench/send_frames.sh [SECONDS=6] [CONNECTIONS=64]   (REFLECTO_BIN as for bench/send.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-6}"; conns="${2:-64}"
source bench/relay.sh

wrk -t2 -c"$conns" -d"${secs}s" -s "$dir/send.lua" "http://127.0.0.1:$port/v1/send" > "$dir/wrk" &
load=$!
sleep "$((secs - 1))"
# Frozen, the relay writes nothing while its files are copied; the copy is what a crash at
# that moment would leave, which SQLite opens as a consistent store.
kill -STOP "$pid"
mkdir "$dir/copy"; cp "$dir"/reflecto.db* "$dir/copy/"
kill -CONT "$pid"
wait "$load"
echo "reflecto $("$bin" --version | cut -d' ' -f2): $(awk '/Requests\/sec/ {print $2}' "$dir/wrk") sends/s"
python3 - "$dir/copy" <<'PY'
import collections, os, sqlite3, struct, sys
store = sys.argv[1]
wal = open(os.path.join(store, "reflecto.db-wal"), "rb").read()
_, _, page_size, _, salt1, salt2, _, _ = struct.unpack(">8I", wal[:32])
commits, frames, offset = [], [], 32
while offset + 24 + page_size <= len(wal):
    page, db_size, s1, s2 = struct.unpack(">4I", wal[offset:offset + 16])
    if (s1, s2) != (salt1, salt2):  # a frame of the log's previous cycle: the end of this one
        break
    frames.append(page)
    if db_size:  # a commit's last frame carries the database's size
        commits.append(frames)
        frames = []
    offset += 24 + page_size
# The first commits of the cycle may follow a checkpoint's restart mid-batch; the last may be
# the one the copy cut. Both are left out.
commits = commits[2:-1]
if not commits:
    sys.exit("bench: no whole commit in the log's current cycle; run longer")
owner = {page: f"{name} {kind}" for name, page, kind in
         sqlite3.connect(os.path.join(store, "reflecto.db")).execute(
             "SELECT name, pageno, pagetype FROM dbstat")}
counts = collections.Counter(owner.get(p, "header" if p == 1 else "free or new")
                             for commit in commits for p in commit)
per_commit = sum(counts.values()) / len(commits)
sends = counts["sqlite_autoindex_messages_1 leaf"] / len(commits)
print(f"{len(commits)} commits: {per_commit:.1f} frames each, about {sends:.1f} sends each "
      f"({per_commit / sends:.2f} frames per send)")
for name, n in counts.most_common():
    print(f"  {n / len(commits):7.2f}  {name}")
PY
