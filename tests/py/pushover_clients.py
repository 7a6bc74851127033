"""Real Pushover client libraries against the relay's shim (SPEC §1.3, §1.17).

Usage: pushover_clients.py LIBRARY ACTION BASE_URL TOKEN [RECEIPT]
  LIBRARY: chump | pushover-complete
  ACTION:  send (an emergency message, retry 30 expire 600) | poll RECEIPT | cancel RECEIPT
Prints one JSON object: what the library returned.
Both libraries hard-code https://api.pushover.net/1/; their module constant is pointed at the
relay, which is what a user of either does to use a Pushover-compatible server. `chump` also
checks tokens against Pushover's own format (30 alphanumerics) before sending anything; a
reflecto token (`rfk_live_` + 32) is a different format, so that client-side pattern is widened.
"""

import json
import sys

library, action, base, token = sys.argv[1:5]
receipt = sys.argv[5] if len(sys.argv) > 5 else None
endpoint = base.rstrip("/") + "/1/"

if library == "chump":
    import chump

    import re

    chump.ENDPOINT = endpoint
    chump.TOKEN_RE = re.compile(r"^[A-Za-z0-9_]+$")
    app = chump.Application(token)
    user = app.get_user("u" * 30)
    if action == "send":
        message = user.create_message(
            "db1 is down", title="page", priority=chump.EMERGENCY, retry=30, expire=600
        )
        assert message.send(), message.error
        print(json.dumps({"id": message.id, "receipt": message.receipt,
                          "acknowledged": message.is_acknowledged,
                          "expired": message.is_expired,
                          "expires_at": message.expires_at.isoformat()}))
    else:
        message = chump.EmergencyMessage(user, "x")
        message.is_sent = True
        message.receipt = receipt
        if action == "poll":
            still = message.poll()
            print(json.dumps({"ringing": still, "acknowledged": message.is_acknowledged,
                              "acknowledged_by": getattr(message.acknowledged_by, "token", None),
                              "acknowledged_at": message.acknowledged_at.isoformat() if message.acknowledged_at else None,
                              "expired": message.is_expired,
                              "last_delivered_at": message.last_delivered_at.isoformat() if message.last_delivered_at else None}))
        else:
            print(json.dumps({"cancelled": message.cancel()}))
elif library == "pushover-complete":
    from pushover_complete import pushover_api

    pushover_api.PUSHOVER_API_URL = endpoint
    api = pushover_api.PushoverAPI(token)
    if action == "send":
        print(json.dumps(api.send_message("u" * 30, "db2 is down", priority=2, retry=30, expire=600)))
    elif action == "poll":
        print(json.dumps(api.check_receipt(receipt)))
    else:
        print(json.dumps(api.cancel_receipt(receipt)))
else:
    sys.exit("unknown library " + library)
