"""Draws the app icons (192/512 px, plain and maskable) as PNG files, without an image library.

Run ``python -m server.web.icons static/icons`` after changing the design; the
PNGs are committed so the server ships them as plain static files.
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from pathlib import Path

THEME = (14, 124, 102)  # the manifest's theme colour, #0e7c66
GLYPH = (255, 255, 255)
# Three printed layers, narrowing upwards: (centre y, width, height) as fractions of the glyph box.
LAYERS = ((0.80, 1.00, 0.22), (0.50, 0.76, 0.22), (0.20, 0.52, 0.22))

Pixels = list[list[tuple[int, int, int, int]]]


def _rounded_rect_coverage(x: float, y: float, cx: float, cy: float, hw: float, hh: float, r: float) -> float:
    """How much of the pixel centred at (x, y) a rounded rectangle covers, from its signed distance."""
    qx, qy = abs(x - cx) - hw + r, abs(y - cy) - hh + r
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    distance = outside + min(max(qx, qy), 0.0) - r
    return min(1.0, max(0.0, 0.5 - distance))


def _blend(under: tuple[int, int, int, int], colour: tuple[int, int, int], alpha: float) -> tuple[int, ...]:
    if alpha <= 0.0:
        return under
    ua = under[3] / 255
    out_a = alpha + ua * (1 - alpha)
    rgb = tuple(round((c * alpha + u * ua * (1 - alpha)) / out_a) for c, u in zip(colour, under[:3], strict=True))
    return (*rgb, round(out_a * 255))


def draw_icon(size: int, *, maskable: bool) -> Pixels:
    """A maskable icon fills the square and keeps the glyph inside the 80 % safe circle."""
    corner = 0.0 if maskable else size * 0.22
    glyph_box = size * (0.50 if maskable else 0.62)
    pixels: Pixels = []
    half = size / 2
    for py in range(size):
        row = []
        for px in range(size):
            cov = 1.0 if maskable else _rounded_rect_coverage(px + 0.5, py + 0.5, half, half, half, half, corner)
            row.append((*THEME, round(cov * 255)) if cov > 0 else (0, 0, 0, 0))
        pixels.append(row)
    top = half - glyph_box / 2
    for cy_f, w_f, h_f in LAYERS:
        cx, cy = half, top + cy_f * glyph_box
        hw, hh = w_f * glyph_box / 2, h_f * glyph_box / 2
        radius = hh * 0.6
        for py in range(max(0, math.floor(cy - hh - 1)), min(size, math.ceil(cy + hh + 1))):
            for px in range(max(0, math.floor(cx - hw - 1)), min(size, math.ceil(cx + hw + 1))):
                cov = _rounded_rect_coverage(px + 0.5, py + 0.5, cx, cy, hw, hh, radius)
                pixels[py][px] = _blend(pixels[py][px], GLYPH, cov)  # type: ignore[assignment]
    return pixels


def encode_png(pixels: Pixels) -> bytes:
    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(c for p in row for c in p) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


ICONS = {
    "icon-192.png": (192, False),
    "icon-512.png": (512, False),
    "icon-maskable-192.png": (192, True),
    "icon-maskable-512.png": (512, True),
}


def write_icons(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (size, maskable) in ICONS.items():
        path = folder / name
        path.write_bytes(encode_png(draw_icon(size, maskable=maskable)))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_icons(Path(sys.argv[1] if len(sys.argv) > 1 else "static/icons")):
        print(path, path.stat().st_size, "bytes")
