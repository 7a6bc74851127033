"""A callback receiver for the relay's signed callbacks (SPEC §1.17), verifying each call with
the `standardwebhooks` package (an implementation that is not ours).

Usage: callback_receiver.py SECRET_B64 [STATUS,STATUS,...]
  SECRET_B64: base64 of the 32 raw bytes of the SHA-256 of the sending token.
  STATUS list: what to answer to the first calls, in order (then 200).
Prints the port it listens on (127.0.0.1) as its first line. GET /_received answers every call
seen so far: {"verified", "error", "payload", "webhook_id", "answered"}.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

secret = sys.argv[1]
script = [int(s) for s in sys.argv[2].split(",")] if len(sys.argv) > 2 and sys.argv[2] else []
webhook = Webhook(secret)
received = []


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = {"webhook_id": headers.get("webhook-id"), "verified": False, "error": None, "payload": None}
        try:
            record["payload"] = webhook.verify(body, headers)
            record["verified"] = True
        except Exception as e:  # any failure is reported to the test
            record["error"] = repr(e)
        status = script.pop(0) if script else 200
        record["answered"] = status
        received.append(record)
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self):
        data = json.dumps(received).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
