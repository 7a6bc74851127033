#!/usr/bin/env python3
"""An independent libsodium implementation (PyNaCl) for the sealed-delivery tests (SPEC §1.12).

  sealed_box.py keygen          prints a fresh X25519 key pair: the private key, then the
                                public key, each base64url without padding, one per line
  sealed_box.py open PRIVATE    reads base64url sealed boxes, one per line, from stdin and
                                prints each opened plaintext on its own line (a box that does
                                not open exits 1)
"""

import base64
import sys

from nacl.public import PrivateKey, SealedBox


def b64url_decode(text):
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def main(argv):
    if argv[1:] == ["keygen"]:
        key = PrivateKey.generate()
        print(b64url_encode(bytes(key)))
        print(b64url_encode(bytes(key.public_key)))
        return 0
    if len(argv) == 3 and argv[1] == "open":
        box = SealedBox(PrivateKey(b64url_decode(argv[2])))
        for line in sys.stdin:
            if line.strip():
                sys.stdout.write(box.decrypt(b64url_decode(line)).decode("utf-8") + "\n")
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
