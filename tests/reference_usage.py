"""An independent reference for what a sliced file uses, layer by layer, per filament: the test oracle.

Written from the billing rules in docs/analysis.md ("Gcode rules"), deliberately small and slow: one
line at a time, no indexer, no chunking, no numpy, and no import of ``server.analysis``. The real-file
tests hold Layerwise's figures to it layer by layer, and the end-to-end tests take their expectations
from it, so a billing rule broken in Layerwise cannot also move the expectation.

Every counted amount is also itemised by the rule that counted it (``RULES``), and the amounts the
rules leave out are kept beside them, so the tests can say exactly how Layerwise's figure and the
slicer's differ (the prelude, the cut retraction, the firmware flush) instead of allowing a margin.
"""

from __future__ import annotations

import re
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

Usage = dict[int, float]

# Why each amount counts (or does not): the keys of Reference.by_rule.
RULES = (
    "move",        # G0-G3 E outside an M628 S1 block (rule 5)
    "cut",         # M620.11 E<negative>: the outgoing filament pulled back before the cut (rule 6)
    "reprime",     # M620.11 E<positive>: the firmware re-primes the incoming filament (rule 6)
    "virtual",     # ;VG1 E<mm>: a firmware flush or de-retract written as a comment (rule 6)
)
NOT_COUNTED = (
    "repeated_reprime",  # G0-G3 E inside M628 S1 ... M629: the re-prime M620.11 already counted (rule 6)
    "flush_length",      # M620.10 ... L<len>: the flush length repeated for the firmware (rule 6)
    "purge_line",        # G130 ... E<mm>: the load line the firmware purges itself (rule 6)
)
UNLOAD = {255, 65535, 65279}
UNASSIGNED = -1
_WORD = re.compile(r"([A-Z])([-+.0-9]*)")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # malformed numbers are ignored (rule 1)


@dataclass
class Reference:
    layers: dict[int, Usage] = field(default_factory=lambda: defaultdict(dict))  # 0 = prelude
    marks: dict[int, list[tuple[int, Usage]]] = field(default_factory=lambda: defaultdict(list))
    by_rule: dict[str, Usage] = field(default_factory=lambda: defaultdict(dict))
    by_rule_prelude: dict[str, Usage] = field(default_factory=lambda: defaultdict(dict))
    loads: list[tuple[int, int]] = field(default_factory=list)  # (layer, filament), the first load included

    @property
    def layer_count(self) -> int:
        return max(self.layers, default=0)

    def prelude(self) -> Usage:
        return dict(self.layers.get(0, {}))

    def layer(self, n: int) -> Usage:
        return dict(self.layers.get(n, {}))

    def used_through(self, n: int) -> Usage:
        """Cumulative mm per filament through layer n, the prelude included (n=0: the prelude)."""
        out: Usage = {}
        for layer in range(n + 1):
            for filament, mm in self.layers.get(layer, {}).items():
                out[filament] = out.get(filament, 0.0) + mm
        return out

    def totals(self) -> Usage:
        return self.used_through(self.layer_count)

    def layer_at_percent(self, n: int, percent: int) -> Usage:
        """mm used within layer n up to its last M73 P mark at or below ``percent`` (nothing before the
        layer's first mark): what a print stopped there used of that layer."""
        below = [usage for mark, usage in self.marks.get(n, []) if mark <= percent]
        return dict(below[-1]) if below else {}


def compute(gcode: str, default_filament: int = 0) -> Reference:
    ref = Reference()
    layer, loaded, first_load = 0, UNASSIGNED, None
    absolute, position, skip = False, 0.0, False  # relative until M82; inside M628 S1 ... M629
    within: Usage = {}  # this layer's usage so far, for its progress marks

    def aside(rule: str, mm: float) -> None:
        ref.by_rule[rule][loaded] = ref.by_rule[rule].get(loaded, 0.0) + mm

    def count(rule: str, mm: float) -> None:
        ref.layers[layer][loaded] = ref.layers[layer].get(loaded, 0.0) + mm
        ref.by_rule[rule][loaded] = ref.by_rule[rule].get(loaded, 0.0) + mm
        if layer == 0:
            ref.by_rule_prelude[rule][loaded] = ref.by_rule_prelude[rule].get(loaded, 0.0) + mm
        within[loaded] = within.get(loaded, 0.0) + mm

    for raw in gcode.splitlines():
        line = raw.strip()
        if line.startswith(";VG"):  # virtual move: ";VG1 E1.5"
            words = dict(_WORD.findall(line[2:].split(";")[0].upper()))
            e = _number(words.get("E", ""))
            if e and not skip:
                count("virtual", e)
            continue
        line = re.sub(r"^[Nn][0-9]+\s*", "", line).split(";")[0].split("*")[0].strip()
        if not line:
            continue
        command, *rest = line.upper().split()
        words = {letter: value for letter, value in (_WORD.match(w).groups() for w in rest if _WORD.match(w))}
        e = _number(words.get("E", "")) if "E" in words else None
        if command in ("G0", "G1", "G2", "G3", "G00", "G01", "G02", "G03") and e is not None:
            amount = e - position if absolute else e
            position = e if absolute else position + e
            if skip:
                aside("repeated_reprime", amount)
            else:
                count("move", amount)
        elif command == "G92":
            position = 0.0 if not rest else (e if e is not None else position)
        elif command in ("M82", "M83"):
            absolute = command == "M82"
        elif command == "M73":
            n, p = _number(words.get("L", "x")), _number(words.get("P", "x"))
            if n is not None and n == int(n) and int(n) != layer:
                layer, within = int(n), {}
                ref.layers.setdefault(layer, {})  # a layer that uses nothing still exists
            if p is not None and 0 <= p <= 100:
                marks = ref.marks[layer]
                if marks and marks[-1][0] == int(p):
                    marks[-1] = (int(p), dict(within))  # a repeat replaces
                elif not marks or marks[-1][0] < int(p):  # a step back is ignored
                    marks.append((int(p), dict(within)))
        elif command[0] == "T" and command[1:].isdigit():
            tool = int(command[1:])
            if tool <= 254 and tool != loaded:
                loaded = tool
                ref.loads.append((layer, tool))
                first_load = tool if first_load is None else first_load
            # T255 and the other unload codes leave later moves with the filament just unloaded;
            # codes above 254 (T1000, T1100) are start-gcode commands
        elif command == "M620.11" and e and not skip:
            count("cut" if e < 0 else "reprime", e)
        elif command == "M620.10" and (length := _number(words.get("L", "x"))):
            aside("flush_length", length)
        elif command == "G130" and e:
            aside("purge_line", e)
        elif command == "M628":
            skip = _number(words.get("S", "x")) == 1
        elif command == "M629":
            skip = False
    _assign_unloaded(ref, first_load if first_load is not None else default_filament)
    return ref


def _assign_unloaded(ref: Reference, filament: int) -> None:
    """Extrusion before the first load belongs to the first filament the print loads (rule 4)."""
    tables = [*ref.layers.values(), *ref.by_rule.values(), *ref.by_rule_prelude.values(),
              *(usage for marks in ref.marks.values() for _, usage in marks)]
    for usage in tables:
        if UNASSIGNED in usage:
            usage[filament] = usage.get(filament, 0.0) + usage.pop(UNASSIGNED)


def gcode_of(path: Path, plate: int = 1) -> str:
    if path.suffix == ".gcode":
        return path.read_text(encoding="utf-8", errors="replace")
    with zipfile.ZipFile(path) as archive:
        return archive.read(f"Metadata/plate_{plate}.gcode").decode("utf-8", errors="replace")


@cache
def reference_of(path: Path) -> Reference:
    return compute(gcode_of(path))
