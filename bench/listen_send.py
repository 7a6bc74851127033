#!/usr/bin/env python3
"""bench/listen.sh's helper. Without arguments: sends $SENDS notifications to $URL one after
another, printing "index wall-clock-time" before each POST. With --report SENDS MONITOR: pairs
each send with the Notify call dbus-monitor saw for it and prints p50/p99/max latency."""
import json, os, re, sys, time, urllib.request


def send_all():
    url, token, n = os.environ["URL"], os.environ["TOKEN"], int(os.environ["SENDS"])
    gap = int(os.environ.get("INTERVAL_MS", "100")) / 1000
    for i in range(n):
        body = json.dumps({"message": f"bench-{i}", "title": "bench", "device": "bench-desk"}).encode()
        req = urllib.request.Request(f"{url}/v1/send", data=body, method="POST", headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        print(i, f"{time.time():.6f}", flush=True)
        with urllib.request.urlopen(req) as resp:
            resp.read()
        time.sleep(gap)


def report(sends_path, monitor_path):
    sent = {}
    for line in open(sends_path):
        i, t = line.split()
        sent[int(i)] = float(t)
    notified, stamp = {}, None
    for line in open(monitor_path):
        m = re.search(r"method call time=(\d+\.\d+)", line)
        if m:
            stamp = float(m.group(1))
            continue
        m = re.search(r'string "bench-(\d+)"', line)
        if m and stamp is not None:
            notified.setdefault(int(m.group(1)), stamp)
    series = [(i, (notified[i] - sent[i]) * 1000) for i in sorted(sent) if i in notified]
    if os.environ.get("SERIES"):
        print(" ".join(f"{i}:{ms:.0f}" for i, ms in series))
    lat = sorted(ms for _, ms in series)
    if not lat:
        sys.exit("no Notify call matched a send")
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    print(f"send → Notify over {len(lat)}/{len(sent)} sends: p50 {pick(0.50):.1f} ms, "
          f"p99 {pick(0.99):.1f} ms, max {lat[-1]:.1f} ms")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--report":
        report(sys.argv[2], sys.argv[3])
    else:
        send_all()
