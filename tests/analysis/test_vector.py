"""The numpy indexer and the regex indexer agree: same events, same values, sums equal to rounding."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.analysis import AnalysisError, GcodeUsage, analyze_file, analyze_gcode_stream
from server.analysis.gcode import PADDING, regex_index
from server.analysis.vector import index

FIXTURES = Path(__file__).parents[1] / "fixtures" / "print-files"
NAMES = sorted(p.name for p in FIXTURES.iterdir() if p.suffix in (".3mf", ".gcode"))


def _gcode(name: str) -> bytes:
    path = FIXTURES / name
    if path.suffix == ".gcode":
        return path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        return archive.read("Metadata/plate_1.gcode")


def _both(text: bytes) -> tuple[tuple, tuple]:  # type: ignore[type-arg]
    buf = b"\n" + text + b"\n" + PADDING
    end = len(text) + 1
    return index(buf, end), regex_index(buf, end)


@pytest.mark.parametrize("name", NAMES)
def test_engines_agree_on_real_files(name: str) -> None:
    data = _gcode(name)
    fast = analyze_gcode_stream([data], vectorised=True)
    slow = analyze_gcode_stream([data], vectorised=False)
    assert fast.tool_changes == slow.tool_changes
    assert fast.header == slow.header
    assert len(fast.layers) == len(slow.layers)
    for a, b in zip(fast.layers, slow.layers, strict=True):
        assert a.keys() == b.keys()
        assert a == pytest.approx(b, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize(
    "line",
    [
        b"G1 X1 E1.41544",
        b"G1 X1 E-.76",
        b"G1 E+2.5",
        b"G1 E.00849 F1800",
        b"G1 X1 E123456789.125",  # longer than the vectorised width
        b"G1 X1 E1..2",  # malformed: ignored by both
        b"G1 X1 E-",
        b"G1 X1 E5-3",
        b"G1 X1 E",
        b"G1 X1 ;E5",
        b"G1\tX1 E7",
        b"G3 X1 Y2 I1 J0 E0.3",
        b"G1 X1 E2*55",
        b"G1 X1 E2\r",
        b"G12 E5",
        b"G1E5",
        b"G4 E5",  # G4-G9 are no moves, whatever words follow
        b"G9 X1 E5",
    ],
)
def test_number_forms_agree(line: bytes) -> None:
    fast, slow = _both(b"G92 E0\n" + line + b"\nM73 L1\n")
    assert fast[0] == slow[0]  # events
    assert fast[3] == slow[3]  # counts
    assert fast[1] == slow[1]  # sums
    assert fast[2] == slow[2]  # last values


def test_engines_agree_on_a_buffer_without_its_padding() -> None:
    text = b"\nM73 L1\nG1 X1 E1.5\nT1\nG1 X1 E2\nM73 L2\n"
    assert index(text, len(text) - 1) == regex_index(text + PADDING, len(text) - 1)


def test_event_lines_agree() -> None:
    text = (
        b"M73 L1\nM73 P5 R3\nM73 E50\nM620.11 S1 E-1\nM620.1 E\nM628 S1\nM629\nM82\nM83\nM84\nG92 E0\nG00 E1\n"
        b"G04 P1\nT0\nT\nTx\nN12 G1 E1\n  G1 E1\n\tG1 E1\n;VG1 E1\n; total layer number: 5\n; filament: 1\n"
        b"; filamen\n; model printing time: 1m\n; FEATURE: x\nG1 X1 E1\n  ; indented comment E5\n \t;VG1 E2\n"
        b"   \n\t\r\n  M83\n"
        b"T:\nN:1 G1 E1\nT/\n"  # ':' and '/' border the digits: no tool change, no line number
        # Bytes holding every bit of "; filament" and more ('{' and ';' of ' ', 'u' of 't'): no header comment.
        b";{filament: 1\n;;filament: 1\n; filamenu: 1\n; filameou: 1\n"
    )
    fast, slow = _both(text)
    assert fast == slow


LINES = st.sampled_from(
    [
        b"G1 X1 E1.5",
        b"G1 E-.8",
        b"G92 E0",
        b"M82",
        b"M83",
        b"M73 L3",
        b"M73 P7 R1",
        b"T1",
        b"T255",
        b"  T2",
        b"M620.11 S1 I0 E-18",
        b"M628 S1",
        b"M629",
        b";VG1 E4",
        b"; comment E5",
        b"  ; indented E5",
        b"N7 G1 E2*3",
        b"G2 X1 I1 E.3",
        b"",
        b"\r",
        # Hostile forms (issue 9): both indexers refuse or ignore them alike.
        b"G1 X1 E" + b"9" * 400,
        b"  G1 E-" + b"9" * 400,
        b"G1 E60000",
        b"G92 E" + b"9" * 400,
        b"M73 L" + b"9" * 5000,
        b"M73 P" + b"9" * 400,
        b"T" + b"9" * 5000,
        b"G1 Enan",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(st.one_of(LINES, st.binary(max_size=24)), max_size=60),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
)
def test_arbitrary_input_never_crashes_and_engines_agree(lines: list[bytes], cuts: list[int]) -> None:
    data = b"\n".join(lines)
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    outcomes = []
    for vectorised in (True, False):
        try:
            outcomes.append(analyze_gcode_stream(pieces, vectorised=vectorised))
        except AnalysisError as err:  # refused (absurd extrusion, ...): by both, with the same message
            outcomes.append((type(err), str(err)))
    fast, slow = outcomes
    # GcodeUsage is itself a tuple: a refusal is told apart by its type, not by being a tuple.
    if not isinstance(fast, GcodeUsage) or not isinstance(slow, GcodeUsage):
        assert fast == slow
        return
    assert fast.tool_changes == slow.tool_changes
    assert fast.header == slow.header
    assert [sorted(layer) for layer in fast.layers] == [sorted(layer) for layer in slow.layers]
    for a, b in zip(fast.layers, slow.layers, strict=True):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9)


def test_one_shot_analysis_of_a_small_file_uses_the_regex_indexer() -> None:
    """`layerwise analyze` (one_shot) leaves numpy out below VECTOR_FROM_BYTES; the tracker keeps numpy.
    Same figures to rounding either way (the two indexers sum in a different order)."""
    path = FIXTURES / "p1s-2colour-bs2.05.gcode.3mf"
    regex = analyze_gcode_stream([_gcode(path.name)], vectorised=False)
    vector = analyze_gcode_stream([_gcode(path.name)], vectorised=True)
    assert analyze_file(path, one_shot=True).layers == regex.layers
    assert analyze_file(path).layers == vector.layers
