"""A deliberately small gcode walker: what the virtual printer needs to report progress like the firmware.

It reads only three things, in file order: layer starts (``M73 L<n>``), progress marks (``M73 P<pct> R<min>``)
and filament changes (``M620 S<n>A``; S255/S65535 are unloads). It is independent of ``server.analysis`` on
purpose: the simulator must not share code paths with what it is used to test.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from io import BytesIO

_LAYER = re.compile(rb"^M73\s+L(\d+)")
_PROGRESS = re.compile(rb"^M73\s+P(\d+)(?:\s+R(\d+))?")
_FILAMENT = re.compile(rb"^M620\s+S(\d+)A")
_UNLOADS = {255, 65535}


@dataclass(frozen=True)
class Progress:
    percent: int
    remaining_minutes: int | None


@dataclass(frozen=True)
class FilamentChange:
    filament: int  # 0-based slicer filament index


Event = Progress | FilamentChange


@dataclass
class Layer:
    number: int  # 0 = start gcode before the first layer
    events: list[Event] = field(default_factory=list)


@dataclass
class PrintPlan:
    layers: list[Layer]  # layers[0] is the start gcode, layers[n] is layer n

    @property
    def total_layers(self) -> int:
        return len(self.layers) - 1

    def filaments_used(self) -> list[int]:
        seen: list[int] = []
        for layer in self.layers:
            for event in layer.events:
                if isinstance(event, FilamentChange) and event.filament not in seen:
                    seen.append(event.filament)
        return seen


def plan_from_gcode(gcode: bytes) -> PrintPlan:
    layers = [Layer(0)]
    for raw in gcode.splitlines():
        line = raw.lstrip()
        if not line.startswith(b"M"):
            continue
        if match := _LAYER.match(line):
            layers.append(Layer(int(match.group(1))))
        elif match := _PROGRESS.match(line):
            remaining = match.group(2)
            layers[-1].events.append(Progress(int(match.group(1)), int(remaining) if remaining else None))
        elif (match := _FILAMENT.match(line)) and int(match.group(1)) not in _UNLOADS:
            layers[-1].events.append(FilamentChange(int(match.group(1))))
    return PrintPlan(layers)


def plate_gcode(data: bytes, plate: int = 1) -> bytes:
    """The gcode of one plate of a ``.gcode.3mf``; plain gcode is returned as is."""
    if not data.startswith(b"PK"):
        return data
    with zipfile.ZipFile(BytesIO(data)) as archive:
        return archive.read(f"Metadata/plate_{plate}.gcode")


def plan_from_file(data: bytes, plate: int = 1) -> PrintPlan:
    return plan_from_gcode(plate_gcode(data, plate))
