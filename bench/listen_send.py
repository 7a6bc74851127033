#!/usr/bin/env python3
"""bench/listen.sh's helper. Without arguments: sends $SENDS notifications to $URL one after
another, printing "index wall-clock-time-before-the-POST time-it-was-answered". With --report SENDS MONITOR: pairs
each send with the Notify call dbus-monitor saw for it and prints p50/p99/max latency, and how
many Notify calls reached the bus before one sent earlier (listen pipelines its calls, in order)."""
import json, os, re, sys, time, urllib.request


def send_all():
    url, token, n = os.environ["URL"], os.environ["TOKEN"], int(os.environ["SENDS"])
    gap = int(os.environ.get("INTERVAL_MS", "100")) / 1000
    for i in range(n):
        body = json.dumps({"message": f"bench-{i}", "title": "bench", "device": "bench-desk"}).encode()
        req = urllib.request.Request(f"{url}/v1/send", data=body, method="POST", headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        before = time.time()
        with urllib.request.urlopen(req) as resp:
            resp.read()
        print(i, f"{before:.6f}", f"{time.time():.6f}", flush=True)
        time.sleep(gap)


def report(sends_path, monitor_path):
    sent, accepted = {}, {}
    for line in open(sends_path):
        i, t, done = line.split()
        sent[int(i)], accepted[int(i)] = float(t), float(done)
    notified, stamp, arrival = {}, None, []
    for line in open(monitor_path):
        m = re.search(r"method call time=(\d+\.\d+)", line)
        if m:
            stamp = float(m.group(1))
            continue
        m = re.search(r'string "bench-(\d+)"', line)
        if m and stamp is not None and int(m.group(1)) not in notified:
            notified[int(m.group(1))] = stamp
            arrival.append(int(m.group(1)))
    series = [(i, (notified[i] - sent[i]) * 1000) for i in sorted(sent) if i in notified]
    if os.environ.get("SERIES"):
        print(" ".join(f"{i}:{ms:.0f}" for i, ms in series))
    lat = sorted(ms for _, ms in series)
    if not lat:
        sys.exit("no Notify call matched a send")
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    print(f"send → Notify over {len(lat)}/{len(sent)} sends: p50 {pick(0.50):.1f} ms, "
          f"p99 {pick(0.99):.1f} ms, max {lat[-1]:.1f} ms; "
          f"{sum(1 for a, b in zip(arrival, arrival[1:]) if b < a)} out of order")
    # The relay's answer to the POST (its commit) is part of send → Notify; this splits it off.
    post = sorted((accepted[i] - sent[i]) * 1000 for i in sent)
    print(f"of which POST /v1/send answered: p50 {post[len(post) // 2]:.1f} ms, "
          f"p99 {post[min(len(post) - 1, int(0.99 * len(post)))]:.1f} ms, max {post[-1]:.1f} ms")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--report":
        report(sys.argv[2], sys.argv[3])
    else:
        send_all()
