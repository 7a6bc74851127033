#!/usr/bin/env python3
"""A fake Web Push service (RFC 8030) that checks what a real one checks, with code that is not
reflecto's: the VAPID ES256 signature against `k` (py_vapid), `aud` equal to its own origin
including the port, `exp` at most 24 h ahead, `sub`, the `Content-Encoding`, `TTL` and `Urgency`
headers, and the body decrypted with http_ece (RFC 8291 / RFC 8188) using the subscription key
pair it generates itself.

Usage: fake_push.py            -> serves on 127.0.0.1:<free port>; prints one JSON line
                                   {"origin", "p256dh", "auth"} on stdout, then serves.
       fake_push.py calibrate   -> sends one message with pywebpush to a fresh fake and checks
                                   that it was accepted and decrypted (exit 0), else exit 1.

The answer is scripted by the endpoint path `/push/<script>`:
  201 (default), 404, 410, 400, 503, `429` (with Retry-After: 7), `429-date` (an HTTP date),
  `delay` (answers 201 after 3 s), `drop` (closes the connection without an answer).
A request that fails a check gets 403 (VAPID) or 400 (headers, body) like a real service, and is
recorded with the reason. GET /_received returns every request as JSON:
  [{"path", "script", "ok", "reason", "plaintext", "clear", "ttl", "urgency", "topic", "rs", "aud", "sub", "exp"}]
A clear ({"clear": "msg_…"}, SPEC §1.15) must be exactly that and carry no Topic.
"""

import base64
import json
import re
import sys
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import py_vapid
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

MAX_EXP_AHEAD = 24 * 3600
URGENCIES = {"very-low", "low", "normal", "high"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Reject(Exception):
    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def check_clear(plaintext: bytes, record: dict):
    """A clear (SPEC §1.15) is exactly {"clear": "msg_…"} and carries no Topic: a Topic would let
    the push service replace a newer message of the key with it."""
    try:
        message = json.loads(plaintext)
    except ValueError:
        return
    if not isinstance(message, dict) or "clear" not in message:
        return
    if set(message) != {"clear"} or not re.fullmatch(r"msg_[0-9a-f]{32}", str(message["clear"])):
        raise Reject(400, f"a clear must be exactly {{\"clear\": \"msg_…\"}}: {message!r}")
    if "topic" in record:
        raise Reject(400, "a clear must not carry a Topic")
    record["clear"] = message["clear"]


def check_vapid(header: str, origin: str) -> dict:
    """Parses `vapid t=<jwt>, k=<key>` and verifies it; returns the claims."""
    if not header.startswith("vapid "):
        raise Reject(403, "authorization scheme is not vapid")
    params = {}
    for part in header[len("vapid ") :].split(","):
        name, _, value = part.strip().partition("=")
        params[name] = value
    if "t" not in params or "k" not in params:
        raise Reject(403, "vapid header lacks t or k")
    token = params["t"]
    signing_input, _, signature = token.rpartition(".")
    try:
        verifier = py_vapid.Vapid02.from_raw_public(params["k"].encode())
        valid = verifier.verify_token(signing_input.encode(), signature)
    except Exception as e:  # a malformed key or signature is a refusal, not a crash
        raise Reject(403, f"vapid key or signature unreadable: {e}")
    if not valid:
        raise Reject(403, "vapid signature does not verify against k")
    head_b64, _, claims_b64 = signing_input.partition(".")
    head = json.loads(b64url_decode(head_b64))
    if head.get("alg") != "ES256" or head.get("typ") != "JWT":
        raise Reject(403, f"jwt header is {head}")
    claims = json.loads(b64url_decode(claims_b64))
    if claims.get("aud") != origin:
        raise Reject(403, f"aud {claims.get('aud')!r} is not this origin {origin!r}")
    exp = claims.get("exp")
    now = time.time()
    if not isinstance(exp, int) or exp <= now or exp > now + MAX_EXP_AHEAD:
        raise Reject(403, f"exp {exp!r} is not within 24 h ahead")
    sub = claims.get("sub", "")
    if not (sub.startswith("mailto:") or sub.startswith("https:")):
        raise Reject(403, f"sub {sub!r} is not a mailto: or https: contact")
    return claims


class FakePush:
    def __init__(self):
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth = __import__("os").urandom(16)
        self.received = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != "/_received":
                    return self.answer(404)
                with fake.lock:
                    body = json.dumps(fake.received).encode()
                self.answer(200, body, {"Content-Type": "application/json"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                script = self.path.rsplit("/", 1)[-1] if self.path.startswith("/push/") else "201"
                record = {"path": self.path, "script": script, "ok": False, "reason": None}
                status = fake.check(self, body, record)
                with fake.lock:
                    fake.received.append(record)
                if status is not None:
                    return self.answer(status, record["reason"].encode())
                if script == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if script == "delay":
                    time.sleep(3)
                    return self.answer(201)
                if script == "429":
                    return self.answer(429, b"", {"Retry-After": "7"})
                if script == "429-date":
                    date = formatdate(time.time() + 120, usegmt=True)
                    return self.answer(429, b"", {"Retry-After": date})
                if script.isdigit():
                    return self.answer(int(script))
                return self.answer(201)

            def answer(self, status, body=b"", headers=None):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"

    def subscription(self) -> dict:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"origin": self.origin, "p256dh": b64url(point), "auth": b64url(self.auth)}

    def check(self, handler, body, record):
        """Fills `record`; returns a refusal status, or None when everything checked out."""
        h = handler.headers
        try:
            claims = check_vapid(h.get("Authorization", ""), self.origin)
            record.update(aud=claims["aud"], sub=claims["sub"], exp=claims["exp"])
            if h.get("Content-Encoding") != "aes128gcm":
                raise Reject(400, f"Content-Encoding {h.get('Content-Encoding')!r}")
            ttl = h.get("TTL", "")
            if not ttl.isdigit():
                raise Reject(400, f"TTL {ttl!r} is not a non-negative integer")
            record["ttl"] = int(ttl)
            urgency = h.get("Urgency")
            if urgency not in URGENCIES:
                raise Reject(400, f"Urgency {urgency!r}")
            record["urgency"] = urgency
            # RFC 8030 §5.4: at most 32 characters of the URL-safe base64 alphabet.
            topic = h.get("Topic")
            if topic is not None:
                if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", topic):
                    raise Reject(400, f"Topic {topic!r}")
                record["topic"] = topic
            if len(body) < 21:
                raise Reject(400, "body too short for an aes128gcm header")
            record["rs"] = int.from_bytes(body[16:20], "big")
            try:
                plaintext = http_ece.decrypt(
                    body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
                )
            except Exception as e:
                raise Reject(400, f"body does not decrypt: {e}")
            record["plaintext"] = plaintext.decode("utf-8", "replace")
            check_clear(plaintext, record)
            record["ok"] = True
            return None
        except Reject as r:
            record["reason"] = r.reason
            return r.status

    def serve_in_background(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def calibrate() -> int:
    """pywebpush (a sender that is not ours) must be accepted and decrypted."""
    from pywebpush import webpush

    fake = FakePush()
    fake.serve_in_background()
    sub = fake.subscription()
    vapid = py_vapid.Vapid02()
    vapid.generate_keys()
    endpoint = f"{sub['origin']}/push/201"
    webpush(
        {"endpoint": endpoint, "keys": {"p256dh": sub["p256dh"], "auth": sub["auth"]}},
        data='{"id":"msg_calibrate"}',
        vapid_private_key=vapid,
        # pywebpush derives aud from the endpoint itself; give it ours so the port is kept.
        vapid_claims={"sub": "mailto:ops@example.org", "aud": sub["origin"]},
        ttl=60,
        headers={"Urgency": "normal"},
    )
    got = fake.received
    ok = len(got) == 1 and got[0]["ok"] and got[0]["plaintext"] == '{"id":"msg_calibrate"}'
    print(json.dumps(got))
    fake.server.shutdown()
    return 0 if ok else 1


def main() -> int:
    if sys.argv[1:] == ["calibrate"]:
        return calibrate()
    fake = FakePush()
    print(json.dumps(fake.subscription()), flush=True)
    fake.server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
