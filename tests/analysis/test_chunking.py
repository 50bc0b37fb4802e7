"""Analysing a stream cut into chunks at arbitrary byte positions gives exactly the one-piece result."""

from __future__ import annotations

import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.analysis import analyze_gcode_stream
from server.analysis.scanner import GcodeScanner

FIXTURES = Path(__file__).parents[1] / "fixtures" / "print-files"


def _gcode(name: str) -> bytes:
    with zipfile.ZipFile(FIXTURES / name) as archive:
        return archive.read("Metadata/plate_1.gcode")


# Real gcode with every kind of event: tool changes, cut retractions, indented start gcode, M628 S1.
XMAS = _gcode("xmas-pud-x1c-4colour.gcode.3mf")
ORCA = (FIXTURES / "p1s-2colour-orca2.4.1.gcode").read_bytes()
A1 = _gcode("testqube-a1-4colour-bs2.04.gcode.3mf")
SNIPPET = (
    b"G1 E3\n  M620 S1A\n  T1\nN5 G1 X1 E1.5*33\nM73 L1\nM73 P5 R1\nG1 X1 E2\n;VG1 E4\nM82\nG92 E0\n"
    b"G1 E5\nG1 E7\nM83\nM620 S0A\nM620.11 S1 I1 E-18\nT0\nM620.11 S1 I1 E18\nM628 S1\nG1 E18\n"
    b"M629 S1\nM73 L2\nG1 X2 E0.25 ; c\r\nG1 E-.5\n"
)


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from([XMAS, ORCA, A1, SNIPPET]),
    cuts=st.lists(st.integers(min_value=0, max_value=2_000_000), max_size=40),
)
def test_chunked_equals_whole(source: bytes, cuts: list[int]) -> None:
    whole = analyze_gcode_stream([source])
    assert analyze_gcode_stream(_cut(source, cuts)) == whole


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from([ORCA, A1, SNIPPET]),
    cuts=st.lists(st.integers(min_value=0, max_value=2_000_000), max_size=40),
)
def test_chunked_equals_whole_without_numpy(source: bytes, cuts: list[int]) -> None:
    whole = analyze_gcode_stream([source], vectorised=False)
    assert analyze_gcode_stream(_cut(source, cuts), vectorised=False) == whole


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(SNIPPET)), max_size=len(SNIPPET)))
def test_chunked_snippet_including_single_bytes(cuts: list[int]) -> None:
    assert analyze_gcode_stream(_cut(SNIPPET, cuts)) == analyze_gcode_stream([SNIPPET])


def test_byte_by_byte() -> None:
    assert analyze_gcode_stream([bytes([b]) for b in SNIPPET]) == analyze_gcode_stream([SNIPPET])


def test_carry_stays_bounded_without_events() -> None:
    # A long stretch without any event is processed once it passes the carry cap, so memory is bounded.
    scanner = GcodeScanner(max_carry=1000)
    for _ in range(100):
        scanner.feed(b"G1 X1 E0.5\n" * 50)
        assert len(scanner._carry) <= 1000 + 600
    assert scanner.finish().layers[0] == {0: 2500.0}
