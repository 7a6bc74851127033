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
            base, own = rss_mb(relay.pid), sockets(relay.pid)
            # Connect in parallel (non-blocking), then see which completed: past the cap and a
            # full listen backlog the kernel drops SYNs and those connects stay pending.
            tried = []
            for _ in range(idle_n):
                s = socket.socket(); s.setblocking(False)
                s.connect_ex(("127.0.0.1", port)); tried.append(s)
                time.sleep(0.0005)
            time.sleep(5)
            held = []
            for s in tried:
                try:
                    s.getpeername(); held.append(s)
                except OSError:
                    s.close()
            held_by_relay = sockets(relay.pid) - own
            print(f"idle: {idle_n} idle connections tried, --max-connections 4096: {len(held)} connected "
                  f"(accepted or waiting in the listen backlog), {idle_n - len(held)} still pending (SYN unanswered)")
            print(f"idle:   relay holds {held_by_relay} client connections")
            print(f"idle:   relay RSS {base:.1f} MB before -> {rss_mb(relay.pid):.1f} MB at the cap")
            for s in held:
                s.setblocking(True)
            probes = held[:5]
            for s in probes:
                s.sendall(LIVE)
            print(f"idle:   held connections answered: {sum(answered(s, 10) for s in probes)}/5")
            extra = socket.socket(); extra.setblocking(False); extra.connect_ex(("127.0.0.1", port))
            time.sleep(2)
            try:
                extra.getpeername(); extra.setblocking(True); extra.sendall(LIVE)
                print(f"idle:   a new connection at the cap: in the backlog, answered within 2 s: "
                      f"{answered(extra, 2)} (expected False: it waits)")
                state = "waiting"
            except OSError:
                print("idle:   a new connection at the cap: SYN unanswered (backlog full), it waits")
                state = "pending"
            for s in held[5:1005]:
                s.close()
            deadline = time.time() + 30
            while state == "pending" and time.time() < deadline:
                try:
                    extra.getpeername(); extra.setblocking(True); extra.sendall(LIVE); state = "waiting"
                except OSError:
                    time.sleep(0.2)
            print(f"idle:   after 1000 held ones close, the new one is answered: {answered(extra, 30)}")
        finally:
            relay.kill(); relay.wait()


def bench_headers():
    with tempfile.TemporaryDirectory() as data:
        relay, port = start(data)
        try:
            base, own = rss_mb(relay.pid), sockets(relay.pid)
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
                  f"relay still holds {max(0, sockets(relay.pid) - own)} of them (each got 431 and was closed)")
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
