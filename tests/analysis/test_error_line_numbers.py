"""`layerwise analyze` does not count lines while it scans: an error names its line by reading the gcode a
second time up to the line's first byte (server/analysis/streams.py, ``line_number``). The number is the
line's, however the second read is cut into chunks; the read goes no further than the line and is closed;
an error without a byte offset (too many filament changes) or already numbered is left as it is.
Written from survivors of the mutation run (issue 16, point 6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server.analysis import analyze_file
from server.analysis.errors import AbsurdExtrusion, BadGcode, GcodeTooComplex, LineTooLong
from server.analysis.gcode import MAX_LINE_BYTES, MAX_TOOL_CHANGES
from server.analysis.streams import line_number
from server.cli import main

# Line 1 is blank, 2 "T0", 3 the layer marker, 4-33 moves, 34 the absurd move, 35-64 moves again.
BAD_LINE = b"G1 X1 E9999999\n"
DATA = b"\nT0\nM73 L1\n" + b"G1 X1 E1\n" * 30 + BAD_LINE + b"G1 X1 E1\n" * 30
OFFSET = DATA.index(BAD_LINE)
DETAIL = " (layer 1): G1 X1 E9999999 brings filament 1 to 10000 m in one layer"


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


class SecondRead:
    """The gcode read again, as ``again`` gives it; keeps each stream it hands out (so only an explicit
    close ends one early) and counts the chunks taken."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks, self.taken, self.closed, self.streams = chunks, 0, 0, []

    def __call__(self) -> Iterator[bytes]:
        stream = self._read()
        self.streams.append(stream)
        return stream

    def _read(self) -> Iterator[bytes]:
        try:
            for chunk in self.chunks:
                self.taken += 1
                yield chunk
        finally:
            self.closed += 1


@pytest.mark.parametrize("size", [1, 2, 5, 9, 64, OFFSET, OFFSET + 1, len(DATA)])
def test_the_line_is_numbered_whatever_the_chunks_of_the_second_read(size: int) -> None:
    err = AbsurdExtrusion.at(DETAIL, OFFSET, None)
    # A plain iterator (no close method) is an `again` as good as a generator.
    numbered = line_number(err, lambda: iter(pieces(DATA, size)))
    assert type(numbered) is AbsurdExtrusion
    assert (numbered.line, numbered.offset) == (34, OFFSET)
    assert str(numbered) == "line 34" + DETAIL


def test_an_error_on_the_first_line_is_line_1() -> None:
    err = LineTooLong.at(" is too long", 0, None)
    for size in (1, 4, len(DATA)):
        assert str(line_number(err, lambda size=size: iter(pieces(DATA[1:], size)))) == "line 1 is too long"


def test_the_second_read_stops_at_the_line_and_is_closed() -> None:
    chunks = pieces(DATA, 64)
    read = SecondRead(chunks)
    assert line_number(AbsurdExtrusion.at(DETAIL, OFFSET, None), read).line == 34
    assert read.taken == OFFSET // 64 + 1 < len(chunks)  # up to the chunk holding the line's first byte
    assert read.closed == 1  # closed by line_number, though the caller still holds the stream
    # A line starting right after a chunk's end: that chunk is the last one read.
    at_boundary = SecondRead(pieces(DATA, OFFSET))
    assert line_number(AbsurdExtrusion.at(DETAIL, OFFSET, None), at_boundary).line == 34
    assert (at_boundary.taken, at_boundary.closed) == (1, 1)


def test_an_error_without_an_offset_or_already_numbered_is_left_as_it_is() -> None:
    def never() -> Iterator[bytes]:
        raise AssertionError("the gcode was read a second time")

    for err in (GcodeTooComplex("more than 100000 filament changes: not a real print"),
                LineTooLong.at(" is too long", 10, 2)):
        assert line_number(err, never) is err


def test_layerwise_analyze_names_the_first_line_and_an_unnumbered_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the command (a one-shot analysis): a first line longer than the limit, followed by more
    lines, is line 1; too many filament changes (an error about no line) is reported as it is."""
    first = tmp_path / "first.gcode"
    first.write_bytes(b"G1 X1 E" + b"1" * MAX_LINE_BYTES + b"\nM73 L1\n" + b"G1 X1 E1\n" * 100)
    changes = tmp_path / "changes.gcode"
    changes.write_bytes(b"M73 L1\n" + b"T0\nT1\n" * (MAX_TOOL_CHANGES // 2 + 1))
    with pytest.raises(BadGcode, match=r"^line 1 is longer than "):
        analyze_file(first, one_shot=True)
    for path, message in (
        (first, "line 1 is longer than 256 KiB (real gcode lines are far shorter): not a gcode file"),
        (changes, f"more than {MAX_TOOL_CHANGES} filament changes: not a real print"),
    ):
        assert main(["analyze", str(path)]) == 1
        captured = capsys.readouterr()
        assert (captured.out, captured.err) == ("", f"layerwise analyze: {message}\n")


def test_numbering_an_error_about_no_line_leaves_it_as_it_is() -> None:
    """``numbered`` adds a line number only to an error that names its line by byte offset; one about no
    line (too many filament changes) keeps its message, and one already numbered is renumbered."""
    err = GcodeTooComplex(f"more than {MAX_TOOL_CHANGES} filament changes: not a real print")
    assert err.numbered(7) is err
    assert str(err.numbered(7)) == f"more than {MAX_TOOL_CHANGES} filament changes: not a real print"
    renumbered = LineTooLong.at(" is too long", 10, 2).numbered(3)
    assert (type(renumbered), str(renumbered), renumbered.offset) == (LineTooLong, "line 3 is too long", 10)
