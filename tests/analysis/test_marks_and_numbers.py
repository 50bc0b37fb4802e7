"""Progress marks count against the per-layer figure bound exactly, and a malformed E number among good
ones is skipped, not fatal, by both indexers (issue 16, point 6: survivors of the mutation run)."""

from __future__ import annotations

import pytest

from server.analysis import AnalysisError, analyze_gcode_stream
from server.analysis.errors import GcodeTooComplex
from server.analysis.gcode import MAX_CELLS, MAX_LAYER


def outcome(data: bytes, vectorised: bool) -> object:
    try:
        return analyze_gcode_stream([data], vectorised=vectorised).layers[0]
    except AnalysisError as err:
        return (type(err), str(err))


@pytest.mark.parametrize("vectorised", [True, False], ids=["numpy", "regex"])
def test_a_progress_mark_counts_one_figure_plus_one_per_filament_used_in_its_layer(vectorised: bool) -> None:
    """The figures kept: one per (layer, filament) extruded there, the cumulative layers x filaments, and
    per progress mark its percentage plus its layer's usage so far (none on the empty last layer). Ten
    filaments at layer 0 and ten marks on the last layer land exactly on the bound: accepted. An eleventh
    mark goes one past it: refused."""
    filaments, marks = 10, 10
    layers = (MAX_CELLS - filaments - marks) // filaments
    assert filaments + layers * filaments + marks == MAX_CELLS and layers <= MAX_LAYER + 1

    def gcode(mark_count: int) -> bytes:
        loads = b"".join(b"T%d\nG1 E1\n" % tool for tool in range(filaments))
        progress = b"".join(b"M73 P%d\n" % p for p in range(1, mark_count + 1))
        return loads + b"M73 L%d\n" % (layers - 1) + progress

    assert outcome(gcode(marks), vectorised) == {tool: 1.0 for tool in range(filaments)}
    message = f"more than {MAX_CELLS} per-layer figures (layers x filaments x progress marks): not a real print"
    assert outcome(gcode(marks + 1), vectorised) == (GcodeTooComplex, message)


@pytest.mark.parametrize("vectorised", [True, False], ids=["numpy", "regex"])
def test_a_malformed_e_number_between_good_ones_is_skipped(vectorised: bool) -> None:
    data = b"T0\nG1 X1 E1.5\nG1 X2 E1.2.3\nG1 X3 E-.5\nG1 X4 E2\nM73 L1\nG1 X5 E+-1\nG1 X6 E0.25\n"
    usage = analyze_gcode_stream([data], vectorised=vectorised)
    assert usage.layers[0] == {0: pytest.approx(3.0)}
    assert usage.layers[1] == {0: pytest.approx(0.25)}


@pytest.mark.parametrize("vectorised", [True, False], ids=["numpy", "regex"])
def test_an_e_word_right_after_a_sign_reads_its_own_number(vectorised: bool) -> None:
    # The sign that counts is the one after E; a "-" or "+" stuck before the E belongs to the X word.
    # "1-" is no number (skipped); ":" ends one.
    data = b"T0\nG1 X1-E2\nG1 X1+E3\nG1 X1 E-0.5\nG1 E1-\nG1 E2:\n"
    assert analyze_gcode_stream([data], vectorised=vectorised).layers[0] == {0: pytest.approx(6.5)}


@pytest.mark.parametrize("vectorised", [True, False], ids=["numpy", "regex"])
@pytest.mark.parametrize("word", [b"E1.5-3", b"E-1.5-3", b"E1.25+", b"E-2.5+1", b"E12.5-", b"E-.5-"])
def test_a_number_with_a_sign_after_its_dot_is_no_number(vectorised: bool, word: bytes) -> None:
    # float() refuses "1.5-3": the move's E is skipped, as a malformed one is, however its digits fall.
    data = b"T0\nM73 L1\nG1 X1 " + word + b"\nG1 E2\nM73 L2\n"
    assert analyze_gcode_stream([data], vectorised=vectorised).layers[1] == {0: pytest.approx(2.0)}


@pytest.mark.parametrize("vectorised", [True, False], ids=["numpy", "regex"])
def test_blank_lines_carried_between_chunks_are_counted_once_in_a_line_number(vectorised: bool) -> None:
    # The first chunk is cut after the marker; the blank lines after it are counted with the next chunk.
    chunks = [b"M73 L1\n\n\nG1 E1\n", b"G1 X1 E" + b"9" * 400 + b"\n"]
    with pytest.raises(AnalysisError, match=r"^line 5 \(layer 1\): "):
        analyze_gcode_stream(chunks, vectorised=vectorised)
