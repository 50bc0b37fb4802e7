"""The gcode engine: a scanner fed chunks of a gcode stream that applies the rules of ``gcode.py`` (its
docstring lists them) and returns the per-layer, per-filament millimetres (``GcodeUsage``)."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterable
from types import ModuleType

from server.analysis.errors import AbsurdExtrusion, BadGcode, GcodeTooComplex, LineTooLong
from server.analysis.gcode import (
    _LINE_NUMBER,
    _MOVE_E,
    _MOVES,
    DEFAULT_MAX_CARRY,
    HEADER_KEYS,
    MAX_CELLS,
    MAX_FILAMENT_TOOL,
    MAX_LAYER,
    MAX_LAYER_MM,
    MAX_LINE_BYTES,
    MAX_TOOL_CHANGES,
    PADDING,
    UNASSIGNED,
    UNLOAD_TOOLS,
    GcodeUsage,
    Index,
    Mark,
    ToolChange,
    Usage,
    _count_newlines,
    _float,
    _word,
    regex_index,
)

# From this much gcode on, numpy's import (50-100 ms on a 2-core machine) pays for itself: the regex
# indexer is ~10 ms/MB slower. analyze_file(one_shot=True) (the CLI) uses the regex below it.
VECTOR_FROM_BYTES = 10 << 20

Indexer = Callable[[bytes, int], Index]


def vector_module() -> ModuleType | None:
    """server.analysis.vector, imported on first use; None without numpy."""
    if "numpy" not in sys.modules:
        # Layerwise does no linear algebra: one OpenBLAS thread makes numpy's import ~40 % quicker.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        from server.analysis import vector
    except ImportError:  # pragma: no cover
        return None
    return vector


class _Refused(Exception):
    """An addition that would make a layer's figure non-finite or absurd; _scan names the line."""

    def __init__(self, amount: float, total: float, layer: int, filament: int) -> None:
        super().__init__()
        self.amount, self.total, self.layer, self.filament = amount, total, layer, filament


def _excerpt(line: bytes) -> str:
    text = line.strip().decode("utf-8", "replace")
    return repr(text if len(text) <= 40 else text[:40] + "...")


class GcodeScanner:
    """Incremental engine: ``feed(chunk)`` any number of times, then ``finish()``."""

    def __init__(
        self,
        *,
        default_filament: int = 0,
        max_carry: int = DEFAULT_MAX_CARRY,
        vectorised: bool | None = None,
        count_lines: bool = True,
    ) -> None:
        """``count_lines=False``: errors name a line by its byte offset (``BadGcode.offset``), for a caller
        that can read the gcode again and count only then (~6 ms per 6.5 MB with Debian's python3)."""
        self._index: Indexer = regex_index
        self._count_newlines: Callable[[bytes, int, int], int] = _count_newlines
        # None: numpy when installed. Imported at the first feed, so a reader thread already started
        # inflates meanwhile, and a module that only imports this one does not load numpy.
        self._vector_wanted = vectorised is not False
        self._vector_required = bool(vectorised)
        self._default = default_filament
        self._max_carry = max_carry
        self._carry = b"\n"  # every buffer starts at a line start, marked by its newline
        self._active = UNASSIGNED
        self._first_loaded: int | None = None
        self._layer = 0
        self._layers: list[Usage] = [{}]
        self._marks: list[list[Mark]] = [[]]
        self._absolute = False
        self._e = 0.0  # E position, for M82 absolute mode
        self._skip = False  # inside M628 S1 ... M629: the re-prime already counted via M620.11
        self._tool_changes: list[ToolChange] = []
        self._header: dict[str, str] = {}
        self._size = 0
        self._counting = count_lines
        self._lines = 0  # lines before the current buffer (for messages)
        self._base = -1  # where the current buffer starts in the stream (the first starts with a made-up newline)
        self._cells = 0  # per-layer figures kept, against MAX_CELLS
        self._done = False

    def _use_vector(self, *, required: bool) -> None:
        vector = vector_module()
        if vector is None:
            if required:
                raise RuntimeError("numpy is not installed")
            return
        self._index, self._count_newlines = vector.index, vector.count_newlines

    # -- streaming -------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if not data:
            return
        if self._vector_wanted:
            self._vector_wanted = False
            self._use_vector(required=self._vector_required)
        self._size += len(data)
        # One copy per chunk: the carried partial line, the new data, and padding that lets the
        # vectorised indexer read a few bytes past any line without bounds checks.
        buf = b"".join((self._carry, data, PADDING))
        limit = len(buf) - len(PADDING)
        end = buf.rfind(b"\n", 0, limit)  # buf[end:limit] is an incomplete line (or just the newline)
        if limit - end - 1 > MAX_LINE_BYTES:  # checked before the carry can grow with it
            raise self._too_long(buf, end)
        self._check_lines(buf, end)
        cut = self._scan(buf, end)
        if self._counting:
            self._lines += self._count_newlines(buf, 1, cut + 1)
        self._base += cut
        self._carry = buf[cut:limit]

    def finish(self) -> GcodeUsage:
        if self._done:
            raise RuntimeError("finish() called twice")
        self._done = True
        buf = self._carry + b"\n" + PADDING
        self._scan(buf, len(self._carry), final=True)
        self._carry = b""
        return self._result()

    def _check_lines(self, buf: bytes, end: int) -> None:
        """Refuse a complete line in ``buf[:end]`` longer than MAX_LINE_BYTES. Such a line holds a whole
        window of half that size aligned on the half: a few ``find`` calls per chunk, exact after."""
        half = MAX_LINE_BYTES // 2
        for k in range(1, end - half + 1, half):
            if buf.find(b"\n", k, k + half) < 0:
                start = buf.rfind(b"\n", 0, k)
                if buf.find(b"\n", k, end + 1) - start - 1 > MAX_LINE_BYTES:
                    raise self._too_long(buf, start)

    def _located(self, kind: type[BadGcode], buf: bytes, newline: int, detail: str) -> BadGcode:
        """``kind`` about the line that starts after ``buf[newline]``, by its 1-based number when counting."""
        number = self._lines + buf.count(b"\n", 1, newline + 1) + 1 if self._counting else None
        return kind.at(detail, self._base + newline + 1, number)

    def _too_long(self, buf: bytes, newline: int) -> BadGcode:
        return self._located(
            LineTooLong, buf, newline,
            f" is longer than {MAX_LINE_BYTES >> 10} KiB (real gcode lines are far shorter): not a gcode file",
        )

    def _scan(self, buf: bytes, end: int, final: bool = False) -> int:
        """Process segments and events in ``buf[:end]``; return where the unprocessed rest starts.
        The tail after the last event is kept for the next chunk unless ``final`` or too long."""
        events, sums, lasts, counts = self._index(buf, end)
        pos = 0
        span = (0, 0)  # what is being added: a segment of plain moves, or one event line
        try:
            for i, (start, line_end) in enumerate(events):
                if counts[i]:
                    span = (pos, start)
                    self._segment(sums[i], lasts[i])
                span = (start, line_end)
                self._line(buf[start + 1 : line_end])
                pos = line_end
            if (final or end - pos > self._max_carry) and counts[-1]:
                span = (pos, end)
                self._segment(sums[-1], lasts[-1])
        except _Refused as refused:
            raise self._absurd(refused, buf, *span) from None
        return end if final or end - pos > self._max_carry else pos

    def _absurd(self, refused: _Refused, buf: bytes, lo: int, hi: int) -> BadGcode:
        """Name the line: the first move in ``buf[lo:hi]`` with a non-finite or absurd E, else the last
        move there (many moves adding up past the bound)."""
        at = lo
        for match in _MOVE_E.finditer(buf, lo, hi):
            at = match.start()
            value = _float(match.group(1))
            if value is not None and not abs(value) <= MAX_LAYER_MM:
                break
        line = buf[at + 1 : buf.find(b"\n", at + 1)]
        detail = f" (layer {refused.layer}): {_excerpt(line)}"
        if not math.isfinite(refused.amount) or not math.isfinite(refused.total):
            detail += " extrudes a non-finite amount of filament: not a real print"
        else:
            # Numbered from 1, as `layerwise analyze` and the slicer show filaments.
            which = "the filament before any T command" if refused.filament == UNASSIGNED else (
                f"filament {refused.filament + 1}")
            detail += (
                f" brings {which} to {refused.total / 1000:.0f} m in one layer "
                f"(the limit is {MAX_LAYER_MM / 1000:.0f} m): not a real print"
            )
        return self._located(AbsurdExtrusion, buf, at, detail)

    def _segment(self, total: float, last: float | None) -> None:
        if self._absolute:
            if last is None:
                return
            amount = last - self._e
            self._e = last
        else:
            amount = total
            self._e += amount
        if not self._skip:
            self._add(amount)

    # -- slow path: one line ---------------------------------------------------------------------
    def _line(self, line: bytes) -> None:
        if line[:5] == b"M73 L":  # the most frequent event: one per layer
            words = line.split(b";", 1)[0].split()
            if len(words) == 2 and len(words[1]) <= 10 and words[1][1:].isdigit():
                self._set_layer(int(words[1][1:]))
                return
        text = line.strip()
        if not text:
            return
        if text[:1] == b";":
            if text[:2] == b";V":
                self._virtual(text[2:])
            elif text[:2] == b"; ":
                self._comment(text)
            return
        if text[:1] in (b"N", b"n"):
            number = _LINE_NUMBER.match(text.upper())
            if number:
                text = text[number.end() :]
        for stop in (b";", b"*"):
            cut = text.find(stop)
            if cut >= 0:
                text = text[:cut]
        words = text.split()
        if words:
            self._command(words[0].upper(), words)

    def _command(self, cmd: bytes, words: list[bytes]) -> None:
        if cmd in _MOVES:
            e = _word(words, b"E")
            if e is not None:
                self._move(e)
        elif cmd == b"G92":
            if len(words) == 1:
                self._e = 0.0
            else:
                e = _word(words, b"E")
                if e is not None:
                    self._e = e
        elif cmd == b"M83":
            self._absolute = False
        elif cmd == b"M82":
            self._absolute = True
        elif cmd == b"M73":
            layer = _word(words, b"L")
            if layer is not None and math.isfinite(layer) and layer == int(layer):
                self._set_layer(int(layer))
            percent = _word(words, b"P")
            if percent is not None and 0 <= percent <= 100:
                self._mark(int(percent))
        elif cmd[:1] == b"T" and len(cmd) <= 6 and cmd[1:].isdigit():
            self._load(int(cmd[1:]))
        elif cmd == b"M620.11":
            e = _word(words, b"E")
            if e and not self._skip:
                self._add(e)
        elif cmd == b"M628":
            self._skip = _word(words, b"S") == 1
        elif cmd == b"M629":
            self._skip = False

    def _move(self, e: float) -> None:
        if self._absolute:
            amount = e - self._e
            self._e = e
        else:
            amount = e
            self._e += e
        if not self._skip:
            self._add(amount)

    def _virtual(self, text: bytes) -> None:
        words = text.split(b";", 1)[0].split()
        if words and words[0].upper() in _MOVES:
            e = _word(words, b"E")
            if e and not self._skip:
                self._add(e)

    def _comment(self, text: bytes) -> None:
        """``; key = value`` or ``; key: value``: split at the first ``=`` or ``:`` (linear; a regex
        with a lazy key backtracked quadratically on long runs of blanks)."""
        body = text[2:]
        cut = min((i for i in (body.find(b"="), body.find(b":")) if i >= 0), default=-1)
        if cut <= 0:
            return
        key = body[:cut].decode("utf-8", "replace").strip()
        if key in HEADER_KEYS and key not in self._header:
            self._header[key] = body[cut + 1 :].decode("utf-8", "replace").strip()

    # -- state -----------------------------------------------------------------------------------
    def _add(self, amount: float) -> None:
        if amount:
            layer = self._layers[self._layer]
            total = layer.get(self._active, 0.0) + amount
            if not (abs(amount) <= MAX_LAYER_MM and abs(total) <= MAX_LAYER_MM):  # NaN fails both
                raise _Refused(amount, total, self._layer, self._active)
            if self._active not in layer:
                self._spend(1)
            layer[self._active] = total

    def _spend(self, cells: int) -> None:
        self._cells += cells
        if self._cells > MAX_CELLS:
            raise GcodeTooComplex(
                f"more than {MAX_CELLS} per-layer figures (layers x filaments x progress marks): not a real print"
            )

    def _mark(self, percent: int) -> None:
        """Progress marks within a layer rise; one repeated keeps the latest usage (what ``bisect`` in
        layer_at_percent would pick) and one going back is ignored, so a layer keeps at most 101."""
        marks = self._marks[self._layer]
        usage = dict(self._layers[self._layer])
        if marks and marks[-1][0] >= percent:
            if marks[-1][0] == percent:
                marks[-1] = (percent, usage)
            return
        self._spend(len(usage) + 1)
        marks.append((percent, usage))

    def _set_layer(self, n: int) -> None:
        if n < 0 or n > MAX_LAYER:
            return
        while len(self._layers) <= n:
            self._layers.append({})
            self._marks.append([])
        self._layer = n

    def _load(self, n: int) -> None:
        if n in UNLOAD_TOOLS or n > MAX_FILAMENT_TOOL:
            return
        if self._first_loaded is None:
            self._first_loaded = n
        if n != self._active:
            if len(self._tool_changes) >= MAX_TOOL_CHANGES:
                raise GcodeTooComplex(f"more than {MAX_TOOL_CHANGES} filament changes: not a real print")
            self._tool_changes.append(ToolChange(self._layer, n))
            self._active = n

    def _result(self) -> GcodeUsage:
        target = self._first_loaded if self._first_loaded is not None else self._default
        filaments = {f for layer in self._layers for f in layer}
        self._spend(len(self._layers) * len(filaments))  # the cumulative figures PrintAnalysis keeps
        return GcodeUsage(
            layers=tuple(_resolve(layer, target) for layer in self._layers),
            marks=tuple(tuple((p, _resolve(u, target)) for p, u in marks) for marks in self._marks),
            tool_changes=tuple(self._tool_changes),
            header=dict(self._header),
            size=self._size,
        )


def _resolve(usage: Usage, target: int) -> Usage:
    """Give extrusion made before the first load to the first filament loaded."""
    if UNASSIGNED in usage:
        usage = dict(usage)
        early = usage.pop(UNASSIGNED)
        usage[target] = usage.get(target, 0.0) + early
    return dict(sorted(usage.items()))


def analyze_gcode_stream(
    chunks: Iterable[bytes], *, default_filament: int = 0, vectorised: bool | None = None, count_lines: bool = True
) -> GcodeUsage:
    """The pure engine: per-layer, per-filament millimetres of a gcode byte stream."""
    scanner = GcodeScanner(default_filament=default_filament, vectorised=vectorised, count_lines=count_lines)
    for chunk in chunks:
        scanner.feed(chunk)
    return scanner.finish()
