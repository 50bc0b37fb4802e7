"""The scanner's limits at and one past their edge, by both indexers: the last filament a T command
loads, the most filament changes a print may have, a layer's bound reached by extrusion spread over
several segments, the E position relative moves leave for absolute mode when they span several
segments, layer markers the quick path does not read (with more words, indented, 2.0, numbered) or out
of range, progress marks from 0 to 100 %, T commands of up to five digits, line numbers, checksums and
comments on lines the slow path reads, a chunk cut just after a newline, the first E word of a move,
and numpy loaded with one OpenBLAS thread. Written from survivors of the mutation run (issue 16, point 6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.analysis import AnalysisError, analyze_gcode_stream
from server.analysis.errors import AbsurdExtrusion, GcodeTooComplex
from server.analysis.gcode import MAX_FILAMENT_TOOL, MAX_LAYER, MAX_LAYER_MM, MAX_TOOL_CHANGES, ToolChange

ENGINES = pytest.mark.parametrize("vectorised", [True, False], ids=["numpy", "regex"])


def refusal(data: bytes, vectorised: bool) -> tuple[type[AnalysisError], str]:
    with pytest.raises(AnalysisError) as caught:
        analyze_gcode_stream([data], vectorised=vectorised)
    return type(caught.value), str(caught.value)


@ENGINES
def test_t254_loads_the_last_filament_and_t256_loads_none(vectorised: bool) -> None:
    # T255 unloads (the moves after it stay with the filament just unloaded); T256 is no change at all.
    assert MAX_FILAMENT_TOOL == 254
    usage = analyze_gcode_stream([b"T254\nM73 L1\nG1 E5\nT256\nG1 E1\nT255\nG1 E2\n"], vectorised=vectorised)
    assert usage.layers == ({}, {254: 8.0})
    assert usage.tool_changes == (ToolChange(0, 254),)


@ENGINES
def test_exactly_the_most_filament_changes_are_accepted_and_one_more_is_refused(vectorised: bool) -> None:
    # The first load counts as a change: T0, T1, T0, ... MAX_TOOL_CHANGES loads in all, then one more.
    changes = b"M73 L1\n" + b"T0\nT1\n" * (MAX_TOOL_CHANGES // 2)
    usage = analyze_gcode_stream([changes], vectorised=vectorised)
    assert len(usage.tool_changes) == MAX_TOOL_CHANGES
    assert usage.tool_changes[-1] == ToolChange(1, 1)
    message = f"more than {MAX_TOOL_CHANGES} filament changes: not a real print"
    assert refusal(changes + b"T0\n", vectorised) == (GcodeTooComplex, message)


@ENGINES
@pytest.mark.parametrize(
    ("first", "second", "metres"),
    [(b"60000", b"60000", 120), (b"-50000", b"120000", 70)],
    ids=["the-layer-past-the-bound", "one-move-past-the-bound"],
)
def test_a_layer_or_a_move_past_the_bound_is_refused_whichever_the_other_is_within(
    first: bytes, second: bytes, metres: int, vectorised: bool
) -> None:
    """Two moves with an event (a progress mark) between them: two segments. 60 m twice: no move is past
    the bound, the layer is. -50 m then +120 m: the layer ends within it, the second move alone is not."""
    assert 60_000 < MAX_LAYER_MM < 120_000
    data = b"T0\nM73 L1\nG1 X1 E%s\nM73 P5\nG1 X2 E%s\nM73 L2\n" % (first, second)
    assert refusal(data, vectorised) == (
        AbsurdExtrusion,
        f"line 5 (layer 1): 'G1 X2 E{second.decode()}' brings filament 1 to {metres} m in one layer "
        "(the limit is 100 m): not a real print",
    )


@ENGINES
def test_relative_moves_over_several_segments_leave_their_sum_as_the_absolute_position(vectorised: bool) -> None:
    # Relative: 5 + 5, a progress mark, 3, so E is at 13 when M82 switches to absolute; E20 adds 7.
    data = b"T0\nM83\nM73 L1\nG1 E5\nG1 E5\nM73 P5\nG1 E3\nM82\nG1 E20\nM73 L2\n"
    assert analyze_gcode_stream([data], vectorised=vectorised).layers == ({}, {0: 20.0}, {})


@ENGINES
@pytest.mark.parametrize(
    "marker", [b"M73 L2 P50", b"  M73 L2", b"  m73 l2", b"M73 L2.0", b"N7 M73 L2", b"M73 L2 ; two"]
)
def test_a_layer_marker_off_the_quick_path_starts_its_layer(marker: bytes, vectorised: bool) -> None:
    data = b"T0\nM73 L1\nG1 E1\n" + marker + b"\nG1 E2\n"
    usage = analyze_gcode_stream([data], vectorised=vectorised)
    assert usage.layers == ({}, {0: 1.0}, {0: 2.0})
    assert usage.marks[2] == (((50, {}),) if b"P50" in marker else ())


@ENGINES
@pytest.mark.parametrize(
    "marker", [b"M73 L2.5", b"M73 L.5", b"M73 LX2", b"M73 L-1", b"M73 L-3", b"M73 L%d" % (MAX_LAYER + 1)]
)
def test_a_layer_marker_that_is_no_whole_number_in_range_is_ignored(marker: bytes, vectorised: bool) -> None:
    # Layer 3 exists, then layer 1 again: a marker taken as layer -1 would count in the last one (3).
    data = b"T0\nM73 L3\nM73 L1\nG1 E1\n" + marker + b"\nG1 E2\n"
    assert analyze_gcode_stream([data], vectorised=vectorised).layers == ({}, {0: 3.0}, {}, {})


@ENGINES
def test_the_last_layer_a_marker_may_start_is_max_layer(vectorised: bool) -> None:
    usage = analyze_gcode_stream([b"T0\nM73 L%d\nG1 E1\n" % MAX_LAYER], vectorised=vectorised)
    assert usage.layer_count == MAX_LAYER
    assert usage.layers[MAX_LAYER] == {0: 1.0}


@ENGINES
def test_progress_marks_run_from_0_to_100_percent(vectorised: bool) -> None:
    data = b"T0\nM73 L1\nM73 P-1\nM73 P0\nG1 E1\nM73 P50\nG1 E2\nM73 P100\nG1 E4\nM73 P101\n"
    marks = analyze_gcode_stream([data], vectorised=vectorised).marks[1]
    assert marks == ((0, {}), (50, {0: 1.0}), (100, {0: 3.0}))


@ENGINES
def test_a_t_command_of_up_to_five_digits_loads(vectorised: bool) -> None:
    # The digit cap keeps int() off thousands of digits; leading zeros count as digits.
    usage = analyze_gcode_stream([b"T00001\nG1 E1\nT000002\nG1 E2\n"], vectorised=vectorised)
    assert usage.layers == ({1: 3.0},)
    assert usage.tool_changes == (ToolChange(0, 1),)


@ENGINES
@pytest.mark.parametrize(
    ("lines", "used"),
    [
        (b"  n5 G1 X1 E1", {0: 1.0}),  # a line number in lower case, on an indented line
        (b"N6 T1*22\nG1 E2", {1: 2.0}),  # the checksum is cut before the command is read
        (b"  G1 X1 ; wipe E5 ; end", {}),  # the comment starts at the first ';'
    ],
    ids=["lower-case-line-number", "checksum", "two-semicolons"],
)
def test_line_numbers_checksums_and_comments_on_the_slow_path(lines: bytes, used: dict, vectorised: bool) -> None:
    usage = analyze_gcode_stream([b"T0\nM73 L1\n" + lines + b"\n"], vectorised=vectorised)
    assert usage.layers[1] == used


@ENGINES
@pytest.mark.parametrize(("tail", "rest"), [(b"E", b"5\nG1 E2\n"), (b";", b"E5\nG1 E2\n"), (b"G1 E", b"2\n")])
def test_a_chunk_cut_just_after_a_newline_leaves_the_line_to_the_next_chunk(
    tail: bytes, rest: bytes, vectorised: bool
) -> None:
    # "E5" (no command) and ";E5" are ignored and "G1 E2" counted once, wherever the chunk is cut.
    chunks = [b"T0\nM73 L1\nG1 E1\n" + tail, rest]
    assert analyze_gcode_stream(chunks, vectorised=vectorised).layers == ({}, {0: 3.0})


@ENGINES
def test_only_the_first_e_word_of_a_move_counts(vectorised: bool) -> None:
    data = b"T0\nM73 L1\nG1 X1 E1 E2\nG1 E4 X1 E8\nG1 X2 E0.5\n"
    assert analyze_gcode_stream([data], vectorised=vectorised).layers == ({}, {0: 5.5})


@pytest.mark.parametrize(("first", "threads"), [("", "1"), ("import numpy; ", "None")], ids=["fresh", "numpy-loaded"])
def test_numpy_is_loaded_at_the_first_chunk_with_one_openblas_thread(first: str, threads: str) -> None:
    """In a process that has not loaded numpy, the first vectorised chunk loads it with one OpenBLAS thread
    (its import is quicker); a process that loaded numpy itself keeps its environment as it is."""
    code = (f"import os; {first}from server.analysis import analyze_gcode_stream; "
            "u = analyze_gcode_stream([b'T0\\nG1 E1\\n'], vectorised=True); "
            "print(u.layers, os.environ.get('OPENBLAS_NUM_THREADS'))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**env, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert (done.stdout, done.stderr) == (f"({{0: 1.0}},) {threads}\n", "")
