"""The numpy indexer on the words a line can hold: only a move's first E counts, and a line that begins
with a bare E word right after a chunk's cut is left to the next chunk. Both engines, the regex one as the
reference (issue 16: mutants of `vector.index` that no real file tells apart)."""

from __future__ import annotations

import pytest

from server.analysis import analyze_gcode_stream


def _layers(chunks: list[bytes], vectorised: bool) -> list[dict[int, float]]:
    return [dict(layer) for layer in analyze_gcode_stream(chunks, vectorised=vectorised).layers]


@pytest.mark.parametrize("vectorised", [True, False], ids=["numpy", "regex"])
def test_only_the_first_e_word_of_a_move_counts_on_every_line(vectorised: bool) -> None:
    # Firmware reads one E per move: the second word is not extrusion. Two such lines, neither the first E
    # of the chunk, and one whose E is on the first line, so a comparison against any fixed line catches it.
    data = b"T0\nM73 L1\nG1 E1 E7\nG1 X1\nG1 E2 E7\nG1 E4 E7 E9\nM73 L2\n"
    assert _layers([data], vectorised) == [{}, {0: pytest.approx(7.0)}, {}]


@pytest.mark.parametrize("vectorised", [True, False], ids=["numpy", "regex"])
def test_a_line_starting_with_an_e_word_just_after_a_cut_is_no_move(vectorised: bool) -> None:
    # `E5` alone is no move (nothing billed); cut right after the newline before it, its E is the first byte
    # past the chunk's last full line, which the indexer must not look at yet.
    data = b"T0\nM73 L1\nG1 E1\nE5\nG1 E2\nM73 L2\n"
    whole = _layers([data], vectorised)
    assert whole == [{}, {0: pytest.approx(3.0)}, {}]
    for cut in range(1, len(data)):
        assert _layers([data[:cut], data[cut:]], vectorised) == whole, cut
