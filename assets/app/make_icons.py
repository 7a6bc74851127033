#!/usr/bin/env python3
"""Draws the web app's icons (icon-192.png, icon-512.png) with no dependency: concentric echo
rings around a dot on a dark square, kept inside the maskable safe zone (the centre 80 %).
Run from this folder to regenerate them."""

import struct
import zlib

BACKGROUND = (16, 36, 62)
FOREGROUND = (255, 255, 255)
ACCENT = (86, 150, 255)


def pixel(x, y, size):
    """Colour at pixel centre (x, y); a 4x4 supersample gives smooth edges."""
    total = [0, 0, 0]
    for sx in range(4):
        for sy in range(4):
            px = (x + (sx + 0.5) / 4) / size - 0.5
            py = (y + (sy + 0.5) / 4) / size - 0.5
            r = (px * px + py * py) ** 0.5
            if r < 0.09:
                colour = FOREGROUND
            elif 0.16 < r < 0.21 and px > -0.05:
                colour = FOREGROUND
            elif 0.28 < r < 0.33 and px > 0.02:
                colour = ACCENT
            else:
                colour = BACKGROUND
            for i in range(3):
                total[i] += colour[i]
    return bytes(c // 16 for c in total)


def png(size):
    rows = b"".join(b"\x00" + b"".join(pixel(x, y, size) for x in range(size)) for y in range(size))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


if __name__ == "__main__":
    for size in (192, 512):
        with open(f"icon-{size}.png", "wb") as f:
            f.write(png(size))
