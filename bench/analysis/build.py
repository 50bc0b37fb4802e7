"""Build a big .gcode.3mf from a real sample by repeating its layers with renumbered layer markers.

Streams: the sample is split at its ``M73 L<n>`` lines, the body layers are written again and again
(marker renumbered each time) straight into a deflated zip member, so building needs little memory.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import zipfile
from pathlib import Path

MARKER = re.compile(rb"^M73 L([0-9]+)\r?$", re.M)


def split_layers(gcode: bytes) -> tuple[bytes, list[bytes], bytes]:
    """(prelude, body layers each starting with its marker line minus the number, last layer + end)."""
    starts = [m.start() for m in MARKER.finditer(gcode)]
    prelude = gcode[: starts[0]]
    layers = [gcode[a:b] for a, b in itertools.pairwise(starts)]
    return prelude, layers, gcode[starts[-1] :]


def _renumber(layer: bytes, n: int) -> bytes:
    return MARKER.sub(b"M73 L%d" % n, layer, count=1)


def build(sample: Path, out: Path, target_bytes: int) -> tuple[int, int]:
    """Write ``out`` (a .gcode.3mf with Metadata/plate_1.gcode of at least target_bytes); return
    (gcode bytes, layer count)."""
    with zipfile.ZipFile(sample) as archive:
        gcode = archive.read("Metadata/plate_1.gcode")
        others = {n: archive.read(n) for n in archive.namelist() if not n.startswith("Metadata/plate_1.gcode")}
    prelude, layers, last = split_layers(gcode)
    digest = hashlib.md5(usedforsecurity=False)
    size, n = 0, 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in others.items():
            archive.writestr(name, data)
        with archive.open("Metadata/plate_1.gcode", "w", force_zip64=True) as member:

            def write(data: bytes) -> None:
                nonlocal size
                member.write(data)
                digest.update(data)
                size += len(data)

            write(prelude)
            while size < target_bytes:
                for layer in layers:
                    n += 1
                    write(_renumber(layer, n))
            n += 1
            write(_renumber(last, n))
        archive.writestr("Metadata/plate_1.gcode.md5", digest.hexdigest().upper())
    return size, n
