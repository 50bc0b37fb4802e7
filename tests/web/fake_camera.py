"""A y4m video of a Spoolman label, for Chromium's fake camera (--use-file-for-fake-video-capture)."""

from __future__ import annotations

from pathlib import Path

import segno

WIDTH, HEIGHT = 640, 480
BLACK, WHITE, NEUTRAL = 16, 235, 128  # video-range luma; chroma 128 = no colour


def qr_frame(text: str) -> bytes:
    """One I420 frame: a full QR code (as Spoolman prints; never Micro QR) centred with a quiet zone."""
    rows = list(segno.make_qr(text, error="m").matrix_iter(scale=1, border=4))
    scale = min(WIDTH, HEIGHT) * 3 // 4 // len(rows)
    size = len(rows) * scale
    left, top = (WIDTH - size) // 2, (HEIGHT - size) // 2
    luma = bytearray([WHITE]) * (WIDTH * HEIGHT)
    for r, row in enumerate(rows):
        line = bytes(BLACK if dark else WHITE for dark in row for _ in range(scale))
        for y in range(top + r * scale, top + (r + 1) * scale):
            luma[y * WIDTH + left : y * WIDTH + left + size] = line
    chroma = bytes([NEUTRAL]) * ((WIDTH // 2) * (HEIGHT // 2))
    return bytes(luma) + chroma + chroma


def write_y4m(path: Path, text: str, frames: int = 3) -> Path:
    frame = qr_frame(text)
    header = f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + b"".join(b"FRAME\n" + frame for _ in range(frames)))
    return path
