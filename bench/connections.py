#!/usr/bin/env python3
"""What the relay holds under connection pressure (issue 8), against the release binary:

1. idle: 5,000 idle connections against --max-connections 4096 — connections the relay holds,
   its RSS, and whether a held connection and a new one are still answered;
2. headers: 1,000 connections each sending one never-finished 390 KB header line — RSS after;
3. sigterm: 1,000 open /v1/sync streams (+ 10 half-open connections) — time from SIGTERM to
   exit, and the exit status.

Usage: bench/connections.py [IDLE=5000] [STREAMS=1000]   (builds the release binary)"""
import os, resource, socket, subprocess, sys, tempfile, time

idle_n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
streams_n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
subprocess.run(["cargo", "build", "--release", "--locked", "-q"], cwd=root, check=True)
binary = os.path.join(root, "target", "release", "reflecto")
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
LIVE = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024


def sockets(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return n


def start(data, *flags):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    relay = subprocess.Popen([binary, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}",
                              "--limit-ip-minute", "0", "--limit-ip-hour", "0", *flags],
                             stderr=subprocess.DEVNULL, env={**os.environ, "REFLECTO_LOG": "warn"})
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            break
        except OSError:
            time.sleep(0.05)
    return relay, port


def answered(sock, timeout):
    sock.settimeout(timeout)
    try:
        return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def bench_idle():
    with tempfile.TemporaryDirectory() as data:
        relay, port = start(data, "--max-connections", "4096", "--idle-timeout", "600")
        try:
            base = rss_mb(relay.pid)
            held = []
            for _ in range(idle_n):
                held.append(socket.create_connection(("127.0.0.1", port)))
            time.sleep(2)
            print(f"idle: {idle_n} idle connections opened, --max-connections 4096")
            print(f"idle:   relay holds {sockets(relay.pid) - 1} client sockets (listener excluded)")
            print(f"idle:   relay RSS {base:.1f} MB before -> {rss_mb(relay.pid):.1f} MB at the cap")
            first = held[0]; first.sendall(LIVE)
            print(f"idle:   a held connection is answered: {answered(first, 5)}")
            extra = socket.create_connection(("127.0.0.1", port)); extra.sendall(LIVE)
            print(f"idle:   a new connection at the cap is answered within 2 s: {answered(extra, 2)} (expected False: it waits)")
            for s in held[1:1001]:
                s.close()
            print(f"idle:   after 1000 held ones close, the new one is answered: {answered(extra, 10)}")
        finally:
            relay.kill(); relay.wait()


def bench_headers():
    with tempfile.TemporaryDirectory() as data:
        relay, port = start(data)
        try:
            base = rss_mb(relay.pid)
            line = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (390 * 1024)
            socks, refused = [], 0
            for _ in range(1000):
                s = socket.create_connection(("127.0.0.1", port))
                s.setblocking(False)
                try:
                    s.send(line)
                except OSError:
                    refused += 1
                socks.append(s)
            time.sleep(2)
            print(f"headers: 1000 connections each sending a never-finished 390 KB header line")
            print(f"headers:   relay RSS {base:.1f} MB before -> {rss_mb(relay.pid):.1f} MB after; "
                  f"relay still holds {sockets(relay.pid) - 1} of them")
            for s in socks:
                s.close()
        finally:
            relay.kill(); relay.wait()


def bench_sigterm():
    with tempfile.TemporaryDirectory() as data:
        admin = lambda *a: subprocess.run([binary, "admin", "--data-dir", data, *a], check=True,
                                          capture_output=True, text=True).stdout.strip()
        admin("user", "add", "bench")
        credential = admin("device", "add", "--user", "bench", "--label", "desk", "--type", "extension").splitlines()[1]
        for half_open in (0, 10):
            relay, port = start(data)
            streams = []
            request = (f"GET /v1/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {credential}\r\n\r\n").encode()
            for _ in range(streams_n):
                s = socket.create_connection(("127.0.0.1", port)); s.sendall(request); streams.append(s)
            ok = 0
            for s in streams:
                s.settimeout(10)
                ok += s.recv(64).startswith(b"HTTP/1.1 200")
            halves = []
            for _ in range(half_open):
                s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"POST /v1/send HTTP/1.1\r\nHost: x\r\n"); halves.append(s)
            started = time.perf_counter()
            relay.terminate()
            status = relay.wait(timeout=60)
            elapsed = time.perf_counter() - started
            print(f"sigterm: {ok}/{streams_n} streams open, {half_open} half-open connections: "
                  f"exit {status} {elapsed:.2f} s after SIGTERM")
            for s in streams + halves:
                s.close()


bench_idle()
bench_headers()
bench_sigterm()
