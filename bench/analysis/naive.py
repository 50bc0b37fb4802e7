"""The reference for ``layerwise analyze`` as a whole process: a plain line-by-line parser, the kind the
first per-layer filament tools used. ``python -m bench.analysis.naive FILE`` prints the layer count and the
mm per filament, like ``layerwise analyze`` does.

Written as such a tool is written, not made slow on purpose: read the plate's gcode, and for each line strip
the comment, split it, parse the parameters into a dict and append an operation to a list; then one pass over
the operations adds each extrusion to its layer (Bambu files mark layers with ``M73 L<n>``; ``;LAYER_CHANGE``
and ``; CHANGE_LAYER`` comments too) and its filament (``T<n>``). Same extrusion rules as the engine
(relative/absolute E, ``G92``, the cutter's ``M620.11`` retraction, ``M628``/``M629`` skipped blocks), so its
totals cross-check ``layerwise analyze``'s.
"""

from __future__ import annotations

import sys
import zipfile
from dataclasses import dataclass, field

LAYER_COMMENTS = (";LAYER_CHANGE", "; CHANGE_LAYER")


@dataclass
class Operation:
    command: str
    params: dict[str, float] = field(default_factory=dict)
    line: int = 0


def read_gcode(path: str) -> str:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.startswith("Metadata/plate_") and n.endswith(".gcode"))
            return archive.read(name).decode("utf-8", "replace")
    with open(path, encoding="utf-8", errors="replace") as file:
        return file.read()


def parse(text: str) -> list[Operation]:
    operations: list[Operation] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith(LAYER_COMMENTS):
            operations.append(Operation("LAYER", {}, number))
            continue
        code = line.split(";", 1)[0].strip()
        if not code:
            continue
        words = code.split()
        params: dict[str, float] = {}
        for word in words[1:]:
            try:
                params[word[0].upper()] = float(word[1:])
            except (ValueError, IndexError):  # a parameter without a number (``M620 S1A``): nothing to bill
                continue
        operations.append(Operation(words[0].upper(), params, number))
    return operations


def per_layer(operations: list[Operation]) -> tuple[int, dict[int, dict[int, float]]]:
    """(layer count, layer -> filament -> mm); layer 0 is everything before the first marker."""
    layers: dict[int, dict[int, float]] = {}
    layer, count, tool, first_tool = 0, 0, -1, None
    absolute, e_pos, skipping = False, 0.0, False
    numbered = any(op.command == "M73" and "L" in op.params for op in operations)  # else count the comments
    for op in operations:
        amount = 0.0
        if op.command == "LAYER":
            if not numbered:
                layer = count = layer + 1
        elif op.command in ("G0", "G1", "G2", "G3") and "E" in op.params:
            e = op.params["E"]
            amount = e - e_pos if absolute else e
            e_pos = e if absolute else e_pos + amount
        elif op.command == "G92":
            e_pos = op.params.get("E", 0.0)
        elif op.command in ("M82", "M83"):
            absolute = op.command == "M82"
        elif op.command == "M73" and "L" in op.params:
            layer = int(op.params["L"])
            count = max(count, layer)
        elif op.command == "M620.11":
            amount = op.params.get("E", 0.0)
        elif op.command == "M628":
            skipping = op.params.get("S") == 1
        elif op.command == "M629":
            skipping = False
        elif op.command[0] == "T" and op.command[1:].isdigit() and int(op.command[1:]) <= 254:  # T255, T1000: no load
            tool = int(op.command[1:])
            first_tool = tool if first_tool is None else first_tool
        if amount and not skipping:
            usage = layers.setdefault(layer, {})
            usage[tool] = usage.get(tool, 0.0) + amount
    for usage in layers.values():  # extrusion before the first tool change is the first tool's
        if -1 in usage:
            early = usage.pop(-1)
            usage[first_tool or 0] = usage.get(first_tool or 0, 0.0) + early
    return count, layers


def main(argv: list[str]) -> int:
    count, layers = per_layer(parse(read_gcode(argv[0])))
    totals: dict[int, float] = {}
    for usage in layers.values():
        for tool, mm in usage.items():
            totals[tool] = totals.get(tool, 0.0) + mm
    print(f"{argv[0]}: {count} layers")
    for tool, mm in sorted(totals.items()):
        print(f"filament {tool + 1}: {mm:.2f} mm")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
