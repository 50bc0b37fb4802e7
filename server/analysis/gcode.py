"""The gcode rules: how much filament each layer of a Bambu Lab / OrcaSlicer print uses, per filament.

Pure code over bytes: feed chunks of a gcode stream, get per-layer millimetres per slicer filament index.

Rules (each has a unit test in tests/analysis/test_gcode_rules.py):

* Commands may be indented; comments (``;`` to end of line), blank lines, ``N<n>`` line numbers and
  ``*<sum>`` checksums are ignored. An unknown command is ignored, never fatal; so is a malformed number.
* ``M73 L<n>`` starts layer ``n``. Everything before the first marker (start gcode, purge line) is the
  *prelude* (layer 0). ``M73 P<percent>`` is a progress mark, recorded per layer with the usage so far.
* ``T<n>`` (0 <= n <= 254) loads slicer filament ``n`` (0-based; ``T<n> H<hotend>`` on H2D is the same).
  ``M620 S<n>A`` only opens the change block: moves inside it before ``T<n>`` still belong to the
  outgoing filament. ``T255``/``T65535``/``T65279`` unload (later moves, if any, stay with the filament
  just unloaded); ``T1000``, ``T1100`` and other codes above 254 are start-gcode commands, not changes.
* Extrusion before any filament is loaded belongs to the first filament the print loads (or to
  ``default_filament`` when the file never loads one, as single-extruder gcode does).
* Extrusion is the ``E`` of ``G0``-``G3``: relative under ``M83``, absolute under ``M82`` with ``G92 E``
  resets; retractions are negative so the net is right. The E position is tracked in both modes so a
  switch from ``M83`` to ``M82`` without ``G92`` stays right.
* Filament the firmware moves by itself is counted exactly once:
  - ``M620.11 ... E-<mm>`` is the cut retraction of the outgoing filament (it goes back to the spool),
    ``M620.11 ... E<mm>`` after ``T<n>`` is the firmware re-prime of the incoming one: both count, on the
    active filament. The real ``G1 E`` that BambuStudio's A1 and OrcaSlicer's templates repeat between
    ``M628 S1`` and ``M629 S1`` is that same re-prime, so moves inside that block do not count
    (``M628 S0`` ... ``M629`` blocks hold real flushes and do count).
  - Lines ``;VG1 E<mm>`` (virtual moves: P2S and H2D templates write the flush between ``; VFLUSH_START``
    and ``; VFLUSH_END`` and the de-retract that way, and the firmware performs them) count as relative
    extrusion of the active filament.
  - ``M620.10 ... L<len>`` only tells the firmware the flush length the gcode already extrudes (A1):
    never counted.
  - Other commands with an E word (``G130 ... E12`` purge line, ``M985.1 E2``, ``M73 E50``) are not
    extrusion moves and are not counted: slicers do not count them either.
* A word's number is the ``[-+.0-9]`` characters after its letter, on every line (``E1e5`` is 1, as the
  indexers read plain moves); ``nan``/``inf`` spelled out are malformed, hence ignored.
* Bad input is a file error (AnalysisError), never a bogus figure or a runaway: an extrusion that makes a
  layer's figure non-finite (an E of 400 digits is ``inf``) or beyond MAX_LAYER_MM is AbsurdExtrusion
  naming the line and layer; a line longer than MAX_LINE_BYTES is LineTooLong; more than
  MAX_TOOL_CHANGES loads or MAX_CELLS per-layer figures is GcodeTooComplex. Progress marks within a layer
  rise (a repeat replaces, a step back is ignored), so a layer keeps at most 101.

Speed: per chunk, an *indexer* finds the rare event lines (vector.index with numpy, or regex_index
with two compiled regexes) and, for each segment between two events (constant state), the sum and
the last of the E values of its plain G0-G3 lines; only event lines go through Python. A chunk is
processed up to its last event and the rest is carried into the next chunk, so the segments (and the
floating-point sums) are the same however the stream is cut.
"""

from __future__ import annotations

import re

from server.analysis.records import NamedTuple

UNASSIGNED = -1  # filament key for extrusion before the first load, resolved at the end
UNLOAD_TOOLS = frozenset({255, 65535, 65279})
MAX_FILAMENT_TOOL = 254
MAX_LAYER = 200_000  # a marker beyond this is garbage, not a layer (keeps memory bounded)
# Bounds that make hostile or broken gcode a file error instead of a bogus bill or a runaway (docs/analysis.md):
# the real files' busiest layer uses 0.33 m of one filament and their longest line (the start gcode in the
# config block) is 21 KiB.
MAX_LAYER_MM = 100_000.0  # 100 m of one filament in one layer (or one move): about 300 g, no printer can
MAX_LINE_BYTES = 256 << 10
MAX_TOOL_CHANGES = 100_000  # a real multi-colour print has hundreds to a few thousand
MAX_CELLS = 2_000_000  # per-layer figures kept (layers x filaments, marks, cumulative): ~100+ MB at most
DEFAULT_MAX_CARRY = 4 << 20
PADDING = b"\n" * 32

# Plain (non-indented) G0-G3 lines; their E word before any comment. Possessive: a line without E fails
# without backtracking. The run up to the E is "any byte but newline, ';' and 'E'" spelt as ranges: re
# compiles that to a 256-bit map tested once per byte, where [^;\nE] is three comparisons per byte; this
# loop runs over most of the file, and the regex is a quarter quicker for it.
_MOVE_E = re.compile(rb"\nG[0-3][ \t][\x00-\x09\x0b-\x3a\x3c-\x44\x46-\xff]*+E([-+.0-9]++)")
# Lines that change state or need the slow path: layer/progress markers, tool changes, mode, resets,
# firmware moves, skip blocks, virtual moves, header comments, numbered lines, G00-G03, and indented
# lines unless they hold only a comment (Bambu indents one per layer) or nothing.
# This is tried at every newline, so it is written for re's quick path: every alternative starts with a
# literal character (re skips an alternative whose first character differs without entering it), grouped
# by that character, G first as most lines are G moves. A third of the time of the flat list.
_EVENT = re.compile(
    rb"\n(?:G(?:92|0[0-3])|M(?:73 [LP]|620\.11|62[89]|8[23])|;(?:V| (?:total|filament|model))|T[0-9]|N[0-9]"
    rb"| [ \t]*+(?:[^; \t\r\n]|;V)|\t[ \t]*+(?:[^; \t\r\n]|;V))"
)
_LINE_NUMBER = re.compile(rb"N[0-9]+[ \t]*")
_NUMBER = re.compile(rb"[-+.0-9]*")  # a word's number: the same characters the indexers take
HEADER_KEYS = frozenset(
    {
        "total layer number",
        "total layers count",
        "total filament length [mm]",
        "total filament weight [g]",
        "filament",
        "filament_density",
        "filament_diameter",
        "filament_type",
        "filament_colour",
        "filament_vendor",
        "filament_settings_id",
        "filament used [mm]",
        "filament used [g]",
    }
)
_MOVES = frozenset({b"G0", b"G1", b"G2", b"G3", b"G00", b"G01", b"G02", b"G03"})


class ToolChange(NamedTuple):
    layer: int  # 0 = prelude
    filament: int  # 0-based slicer filament index loaded


Usage = dict[int, float]  # mm per slicer filament index
Mark = tuple[int, Usage]  # (M73 P percent, mm used within the layer up to that mark)


class GcodeUsage(NamedTuple):
    """What the engine found: ``layers[0]`` is the prelude, ``layers[n]`` layer n (1-based).
    (A NamedTuple, as archive.Limits says why; its dict defaults are shared, so never mutated.)"""

    layers: tuple[Usage, ...]
    marks: tuple[tuple[Mark, ...], ...]
    tool_changes: tuple[ToolChange, ...]
    header: dict[str, str] = {}  # noqa: RUF012 (shared, never mutated)
    size: int = 0  # bytes of gcode read

    @property
    def layer_count(self) -> int:
        return len(self.layers) - 1

    def totals(self) -> Usage:
        out: Usage = {}
        for layer in self.layers:
            for index, mm in layer.items():
                out[index] = out.get(index, 0.0) + mm
        return dict(sorted(out.items()))


def _float(text: bytes) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


Index = tuple[list[tuple[int, int]], list[float], list["float | None"], list[int]]


def regex_index(buf: bytes, end: int) -> Index:
    """Events and per-segment E sums of ``buf[:end]`` with two compiled regexes (no numpy needed);
    same contract as ``vector.index``."""
    events: list[tuple[int, int]] = []
    sums: list[float] = []
    lasts: list[float | None] = []
    counts: list[int] = []
    pos = 0

    def segment(stop: int) -> None:
        values = _MOVE_E.findall(buf, pos, stop) if stop > pos else []
        good = values
        if values:
            try:
                total = sum(map(float, values))
            except ValueError:  # a malformed number is ignored, never fatal
                good = [v for v in values if _float(v) is not None]
                total = sum(map(float, good))
        else:
            total = 0.0
        sums.append(total)
        lasts.append(float(good[-1]) if good else None)
        counts.append(len(good))

    for match in _EVENT.finditer(buf, 0, end):
        start = match.start()
        segment(start)
        line_end = buf.find(b"\n", start + 1, end)
        if line_end < 0:
            line_end = end
        events.append((start, line_end))
        pos = line_end
    segment(end)
    return events, sums, lasts, counts


def _count_newlines(buf: bytes, lo: int, hi: int) -> int:
    return buf.count(b"\n", lo, hi)


def _word(words: list[bytes], letter: bytes) -> float | None:
    for word in words[1:]:
        if word[:1].upper() == letter:
            return _float(_NUMBER.match(word, 1).group())  # type: ignore[union-attr]
    return None


