"""``layerwise analyze`` as a person reads it: right-aligned columns under their headers, blank lines
between the parts, differences against the slicer in grams or else in millimetres, 0.00 for a filament a
layer does not use, filament loads numbered as the slicer shows them, OS errors as one plain line, an
indented JSON document, and ``--help`` explaining ``--json``. Written from survivors of
``python -m bench.mutation`` (issue 16); expected figures are worked out here from the analysis, not
taken from the renderer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from server.analysis import PrintAnalysis, analyze_file
from server.analysis.cli import DIFFERENCE_NOTE, render
from server.analysis.result import _FIELDS
from server.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "print-files"
TWO_COLOUR = FIXTURES / "p1s-2colour-bs2.05.gcode.3mf"  # slicer filaments 1 and 4
XMAS = FIXTURES / "xmas-pud-x1c-4colour.gcode.3mf"  # some layers retract net
HEADERS = ["mm", "g", "slicer mm", "slicer g", "vs slicer"]


def _ends(header: str, names: list[str]) -> list[int]:
    """Where each named column ends in the header line (right-aligned titles)."""
    ends, at = [], 0
    for name in names:
        at = header.index(name, at) + len(name)
        ends.append(at)
    return ends


def _right_aligned(rows: list[str], ends: list[int]) -> None:
    for row in rows:
        for end in ends:
            assert row[end - 1] != " " and (end == len(row) or row[end] == " "), (row, end)


def test_summary_figures_end_under_their_titles() -> None:
    for path in (TWO_COLOUR, XMAS):
        lines = render(analyze_file(path), path.name).splitlines()
        header = next(line for line in lines if line.startswith("filament"))
        assert header.split() == ["filament", "type", "colour", "mm", "g", "slicer", "mm", "slicer", "g", "vs",
                                  "slicer"]
        table = lines[lines.index(header) + 1:]
        rows = table[: next(i for i, line in enumerate(table) if not line)]
        assert rows and rows[-1].startswith("total")
        _right_aligned(rows, _ends(header, HEADERS))


def test_layer_table_figures_end_under_their_titles_and_unused_filaments_read_0() -> None:
    analysis = analyze_file(XMAS)
    lines = render(analysis, XMAS.name, layers=True).splitlines()
    header = next(line for line in lines if line.lstrip().startswith("layer"))
    titles = [f"F{i + 1} mm" for i in analysis.filaments]
    assert header.split() == ["layer", *[part for title in titles for part in title.split()]]
    start = lines.index(header) + 1
    rows = lines[start : start + analysis.layer_count + 1]
    assert rows[0].split()[0] == "prelude" and rows[-1].split()[0] == str(analysis.layer_count)
    _right_aligned(rows, _ends(header, titles))
    assert any(cell.endswith("r") for row in rows for cell in row.split()[1:])  # net retraction, right-aligned
    for n, row in enumerate(rows):
        usage = analysis.prelude() if n == 0 else analysis.layer(n)
        unused = [k for k, i in enumerate(analysis.filaments) if i not in usage]
        for k in unused:
            assert row.split()[1 + k] == "0.00", row


def test_the_parts_are_separated_by_blank_lines_and_loads_use_the_slicers_numbers() -> None:
    analysis = analyze_file(TWO_COLOUR)
    lines = render(analysis, TWO_COLOUR.name, layers=True).splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("layer"))
    assert lines[header - 1] == "" and lines[lines.index(DIFFERENCE_NOTE) - 1] == ""
    loads = next(line for line in lines if line.startswith("filament loads (layer:filament): "))
    expected = ", ".join(f"L{t.layer}:F{t.filament + 1}" for t in analysis.tool_changes)
    assert set(re.findall(r"F\d+", loads)) == {"F1", "F4"} and loads.endswith(expected)


def _with(analysis: PrintAnalysis, **changes: object) -> PrintAnalysis:
    filaments = {i: f._replace(**changes) for i, f in analysis.filaments.items()}  # a NamedTuple (issue 11 speed)
    fields = {name: getattr(analysis, name) for name in _FIELDS}
    return PrintAnalysis(**{**fields, "filaments": filaments})  # type: ignore[arg-type]


def test_without_grams_the_difference_is_in_millimetres_also_for_the_total() -> None:
    analysis = _with(analyze_file(TWO_COLOUR), g=None)
    lines = render(analysis, "x").splitlines()
    for f in analysis.filaments.values():
        assert f.slicer_mm is not None
        row = next(line for line in lines if line.split() and line.split()[0] == str(f.index + 1))
        assert row.endswith(f"{round(f.mm - f.slicer_mm, 2) + 0.0:+.2f} mm")
    total_mm = sum(f.mm for f in analysis.filaments.values())
    total_slicer = sum(f.slicer_mm or 0.0 for f in analysis.filaments.values())
    total = next(line for line in lines if line.startswith("total"))
    assert total.endswith(f"{round(total_mm - total_slicer, 2) + 0.0:+.2f} mm")


def test_a_difference_that_rounds_to_zero_is_never_negative() -> None:
    analysis = analyze_file(TWO_COLOUR)
    first = next(iter(analysis.filaments.values()))
    assert first.g is not None
    # 0.004 g below the slicer: "+0.00 g", not "-0.00 g" (nor a third decimal rounding it away).
    filaments = {**analysis.filaments, first.index: first._replace(slicer_g=first.g + 0.004)}
    nudged = PrintAnalysis(**{**{name: getattr(analysis, name) for name in _FIELDS}, "filaments": filaments})
    row = next(line for line in render(nudged, "x").splitlines() if line.split()[:1] == [str(first.index + 1)])
    assert row.endswith("+0.00 g")


def test_a_missing_file_is_one_plain_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(tmp_path / "gone.gcode.3mf")]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "layerwise analyze: No such file or directory\n"


def test_json_is_an_indented_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(TWO_COLOUR), "--json"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("{\n \"") and json.loads(out)["plate"] == 1


def test_help_explains_json(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    assert "print the analysis as a JSON document" in " ".join(capsys.readouterr().out.split())
