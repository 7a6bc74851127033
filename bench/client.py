#!/usr/bin/env python3
"""`reflecto send` next to curl making the same request to a local relay: median wall time and
peak RSS over N runs each, plus the stripped release binary's size.

Usage: bench/client.py [RUNS=30]   (builds the release binary; needs curl and GNU time: apt-get install time)"""
import json, os, socket, statistics, subprocess, sys, tempfile, time

runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
subprocess.run(["cargo", "build", "--release", "--locked", "-q"], cwd=root, check=True)
binary = os.path.join(root, "target", "release", "reflecto")

def run(cmd, env=None):
    """Wall time, and peak RSS as GNU time measures it (a child forked from this Python process
    would report Python's own RSS from before its exec)."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, f"{cmd[0]} failed: {proc.stderr}"
    return elapsed, int(proc.stderr.strip().splitlines()[-1])  # KiB

with tempfile.TemporaryDirectory() as data, tempfile.TemporaryDirectory() as cfg:
    admin = lambda *a: subprocess.run([binary, "admin", "--data-dir", data, *a], check=True, capture_output=True, text=True).stdout.strip()
    admin("user", "add", "bench")
    admin("device", "add", "--user", "bench", "--label", "phone", "--type", "android", "--fcm-token", "x")
    token = admin("token", "create", "--user", "bench", "--label", "bench")
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    relay = subprocess.Popen([binary, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}",
                              "--limit-token-burst", "0", "--limit-token-monthly", "0", "--limit-receiver-daily", "0",
                              "--limit-ip-minute", "0", "--limit-ip-hour", "0"],
                             stderr=subprocess.DEVNULL, env={**os.environ, "REFLECTO_LOG": "warn"})
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(50):
            if subprocess.run(["curl", "-sf", f"{url}/health/live"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        env = {**os.environ, "REFLECTO_TOKEN": token, "REFLECTO_CONFIG_DIR": cfg}
        body = json.dumps({"message": "Backup done", "priority": "high", "tags": ["ops"]})
        reflecto = [binary, "send", "--server", url, "Backup done", "--priority", "high", "--tag", "ops"]
        curl = ["curl", "-sf", "-o", "/dev/null", "-H", f"Authorization: Bearer {token}", "-H", "Content-Type: application/json",
                "-H", "Idempotency-Key: bench-" + str(time.time_ns()), "--data", body, f"{url}/v1/send"]
        results = {}
        for name, cmd in [("curl", curl), ("reflecto send", reflecto)]:
            samples = []
            for i in range(runs):
                if name == "curl":
                    cmd[cmd.index("-H", 6) + 1] = f"Idempotency-Key: bench-{time.time_ns()}"
                samples.append(run(cmd, env))
            results[name] = (statistics.median(t for t, _ in samples), max(r for _, r in samples))
        for name, (t, rss) in results.items():
            print(f"{name:<14} median wall {t * 1000:7.2f} ms   peak RSS {rss / 1024:6.1f} MiB   ({runs} runs)")
        ratio = results["reflecto send"][0] / results["curl"][0]
        print(f"wall-time ratio reflecto/curl: {ratio:.2f}x   (target <= 1.2x)")
        print(f"stripped release binary: {os.path.getsize(binary) / 1024 / 1024:.1f} MiB")
    finally:
        relay.terminate(); relay.wait()
