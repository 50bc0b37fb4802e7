"""A small, self-made multi-colour ``.gcode.3mf`` for the demo and quick tests.

It follows the structure of Bambu Studio output (header block, ``M73 L`` layer
markers, ``M73 P`` progress marks, ``M620 S<n>A`` / ``T<n>`` / ``M621`` filament
changes with flushes, relative extrusion, slice_info/project_settings metadata,
plate MD5 and thumbnail) so that every stage of Layerwise can run on it, while
staying tiny and free of third-party data.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass

from server.analysis.filament import grams as filament_grams

DENSITY = {"PLA": 1.24, "PETG": 1.27}
DIAMETER = 1.75


@dataclass(frozen=True)
class DemoFilament:
    material: str
    color: str  # RRGGBB


DEMO_FILAMENTS = (
    DemoFilament("PLA", "000000"),
    DemoFilament("PLA", "FFFFFF"),
    DemoFilament("PLA", "C12E1F"),
    DemoFilament("PETG", "00AE42"),
)


def _layer_plan(layer: int, filaments: int) -> list[int]:
    """Which filaments a layer prints, in order: a base colour plus stripes."""
    plan = [0]
    if filaments > 1 and layer % 4 != 0:
        plan.append(1 + (layer // 2) % (filaments - 1))
    return plan


def _moves(count: int, e_each: float) -> list[str]:
    return [f"G1 X{100 + i % 50:.1f} Y{100 + (i * 7) % 50:.1f} E{e_each:.5f}" for i in range(count)]


def demo_gcode(layers: int = 40, filaments: int = 4) -> tuple[str, list[float]]:
    """The plate gcode and the mm of each filament it extrudes."""
    used = [0.0] * filaments
    body: list[str] = []
    current = 0
    total_moves = layers * 2
    done_moves = 0

    def extrude(lines: list[str], f: int, amount: float) -> None:
        used[f] += amount
        lines.append(f"G1 E{amount:.5f} F300")

    body += ["M83", "M73 P0 R30", ";===== machine: start gcode =====", "  M620 S0A", "  T0", "  M621 S0A"]
    # Purge line: real start gcode purges before the first layer marker.
    for line in _moves(10, 1.5):
        body.append(line)
        used[0] += 1.5
    for layer in range(1, layers + 1):
        body += [f"M73 L{layer}", f"M991 S0 P{layer - 1}", f"; layer num/total_layer_count: {layer}/{layers}"]
        for f in _layer_plan(layer, filaments):
            if f != current:
                body += [f"M620 S{f}A", "G1 E-2 F1800"]
                used[current] -= 2
                body.append(f"T{f}")
                body.append("; FLUSH_START")
                extrude(body, f, 30.0)
                body.append("; FLUSH_END")
                body.append(f"M621 S{f}A")
                current = f
            moves = _moves(20, 0.8 if f == 0 else 0.35)
            body += moves
            used[f] += (0.8 if f == 0 else 0.35) * len(moves)
            done_moves += 1
            pct = min(99, math.floor(100 * done_moves / total_moves))
            body.append(f"M73 P{pct} R{max(0, 30 - pct * 30 // 100)}")
    body += ["M73 P100 R0", ";===== machine: end gcode =====", "M620 S255", "T255", "M621 S255", "M400"]
    density = ",".join(str(DENSITY[f.material]) for f in DEMO_FILAMENTS[:filaments])
    header = [
        "; HEADER_BLOCK_START",
        "; BambuStudio 02.04.00.70 (Layerwise demo generator)",
        f"; total layer number: {layers}",
        "; total filament length [mm] : " + ",".join(f"{u:.2f}" for u in used),
        "; total filament weight [g] : "
        + ",".join(f"{grams(u, f.material):.2f}" for u, f in zip(used, DEMO_FILAMENTS, strict=False)),
        f"; filament_density: {density}",
        "; filament_diameter: " + ",".join(str(DIAMETER) for _ in range(filaments)),
        "; HEADER_BLOCK_END",
        "",
    ]
    return "\n".join(header + body) + "\n", used


def grams(mm: float, material: str) -> float:
    return filament_grams(mm, DIAMETER, DENSITY[material])


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def demo_3mf(layers: int = 40, filaments: int = 4, name: str = "Layerwise demo") -> bytes:
    gcode, used = demo_gcode(layers, filaments)
    gcode_bytes = gcode.encode()
    fil = DEMO_FILAMENTS[:filaments]
    total_g = sum(grams(u, f.material) for u, f in zip(used, fil, strict=True))
    slice_info = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<config>",
        "  <plate>",
        '    <metadata key="index" value="1"/>',
        f'    <metadata key="prediction" value="{layers * 45}"/>',
        f'    <metadata key="weight" value="{total_g:.2f}"/>',
        f'    <object identify_id="1" name="{name}" skipped="false" />',
    ]
    for i, (u, f) in enumerate(zip(used, fil, strict=True)):
        slice_info.append(
            f'    <filament id="{i + 1}" type="{f.material}" color="#{f.color}" '
            f'used_m="{u / 1000:.2f}" used_g="{grams(u, f.material):.2f}" />'
        )
    slice_info += ["  </plate>", "</config>", ""]
    project = {
        "filament_density": [str(DENSITY[f.material]) for f in fil],
        "filament_diameter": [str(DIAMETER)] * filaments,
        "filament_type": [f.material for f in fil],
        "filament_colour": [f"#{f.color}" for f in fil],
        "filament_vendor": ["Bambu Lab"] * filaments,
        "filament_settings_id": [f"Bambu {f.material} Basic @BBL X1C" for f in fil],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0" encoding="UTF-8"?><Types/>')
        archive.writestr("Metadata/plate_1.gcode", gcode_bytes)
        archive.writestr("Metadata/plate_1.gcode.md5", hashlib.md5(gcode_bytes).hexdigest().upper())
        archive.writestr("Metadata/slice_info.config", "\n".join(slice_info))
        archive.writestr("Metadata/project_settings.config", json.dumps(project, indent=1))
        archive.writestr("Metadata/plate_1.json", json.dumps({"filament_ids": list(range(filaments))}))
        archive.writestr("Metadata/plate_1.png", _png(64, 64, (0x1F, 0x6F, 0xEB)))
    return buffer.getvalue()
