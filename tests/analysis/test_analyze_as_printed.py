"""``layerwise analyze`` exactly as a person reads it: the whole summary of real files, the whole output for a
hand-written gcode without slicer figures (dashes where a figure is missing, the per-layer table, "none"
for no filament loads, a net retraction marked and explained, a figure that rounds to zero read as 0.00),
``--help``'s line for each argument, and when the gcode's MD5 is read. Written from survivors of the
full mutation run (issue 16, point 6); every expected text here is the output a person gets, spelt out."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import pytest

from server.analysis import analyze_file
from server.analysis.cli import render
from server.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "print-files"
NOTE = "vs slicer: Layerwise's figure minus the slicer's (the slicer rounds to 0.01 g)"
HINT = "Per-layer usage: --layers; machine-readable: --json"
RETRACTION = ("r = net retraction: the filament was pulled back more than it was pushed (it is pushed again "
              "later), so the figure is below zero; totals count it once")
HEADER = "filament type    colour            mm        g  slicer mm slicer g   vs slicer"

SUMMARIES = {
    "p1s-2colour-bs2.05.gcode.3mf": [  # two filaments: a totals row, its difference in grams
        "p1s-2colour-bs2.05.gcode.3mf, plate 1: 100 layers, sliced by BambuStudio 02.05.00.66",
        "",
        HEADER,
        "1        PLA     #FFFFFF      7864.24    23.46    7854.52    23.43     +0.03 g",
        "4        PLA     #161616      2908.70     8.68    2915.81     8.70     -0.02 g",
        "total                        10772.93    32.13   10770.33    32.13     +0.00 g",
        "",
        NOTE,
        HINT,
    ],
    "p2s-example-bs2.05.gcode.3mf": [  # one filament: no totals row
        "p2s-example-bs2.05.gcode.3mf, plate 1: 30 layers, sliced by BambuStudio 02.05.00.66",
        "",
        HEADER,
        "1        PLA     #161616      2535.48     7.50    2539.28     7.51     -0.01 g",
        "",
        NOTE,
        HINT,
    ],
}

# Hand-written: no slicer name, type, colour, density or slicer figures; no tool change; layer 2 retracts
# 0.3 mm net, layer 3 0.004 mm net (0.00 to two decimals, so neither negative nor marked).
PLAIN = b"G1 E5\nM73 L1\nG1 X1 E2.5\nM73 L2\nG1 X2 E-0.3\nM73 L3\nG1 X3 E1\nG1 X4 E-1.004\n"
PLAIN_LAYERS = [
    "plain.gcode, plate 1: 3 layers",
    "",
    HEADER,
    "1        -       -               7.20        -          -        -           -",
    "",
    "  layer      F1 mm",
    "prelude       5.00",
    "      1       2.50",
    "      2     -0.30r",
    "      3       0.00",
    "",
    "filament loads (layer:filament): none",
    "",
    NOTE,
    RETRACTION,
]


def _out(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["analyze", *args]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


@pytest.mark.parametrize("name", sorted(SUMMARIES))
def test_the_summary_of_a_real_file_reads_exactly(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _out(capsys, str(FIXTURES / name)).splitlines() == SUMMARIES[name]


def test_a_plain_gcode_without_slicer_figures_reads_exactly_with_its_layers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plain.gcode"
    path.write_bytes(PLAIN)
    assert _out(capsys, str(path), "--layers").splitlines() == PLAIN_LAYERS
    # Without --layers: the summary, the note and the hint; no retraction note, as no figure shown is negative.
    assert _out(capsys, str(path)).splitlines() == [*PLAIN_LAYERS[:4], "", NOTE, HINT]


def test_a_millimetre_difference_that_rounds_to_zero_is_never_negative(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "header.gcode"  # the slicer's length in the header, no density: the difference is in mm
    path.write_bytes(b"; filament used [mm] = 7.204\n; filament_type = PETG\nG1 E5\nM73 L1\nG1 X1 E2.2\n")
    row = _out(capsys, str(path)).splitlines()[3]
    assert row == "1        PETG    -               7.20        -       7.20        -    +0.00 mm"


def test_render_called_without_a_name_or_layers_gives_the_summary_headed_file() -> None:
    analysis = analyze_file(FIXTURES / "p2s-example-bs2.05.gcode.3mf")
    lines = render(analysis).splitlines()
    assert lines[0] == "file, plate 1: 30 layers, sliced by BambuStudio 02.05.00.66"
    assert lines[1:] == SUMMARIES["p2s-example-bs2.05.gcode.3mf"][1:]


def test_help_describes_each_argument(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one line per argument
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    rows = [re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in capsys.readouterr().out.splitlines()
            if line.startswith("  ")]
    described = {row[0]: row[1] for row in rows if len(row) == 2}
    assert {key: described.get(key) for key in ("file", "--plate PLATE", "--layers", "--json")} == {
        "file": "a sliced .gcode.3mf or .gcode file",
        "--plate PLATE": "plate number or Metadata/plate_N.gcode (default: the first)",
        "--layers": "also print the per-layer table (mm per filament)",
        "--json": "print the analysis as a JSON document (0-based filament indices)",
    }


def test_only_json_reads_and_checks_the_gcodes_md5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The summary shows no MD5, so it neither computes nor checks one; --json has it, and refuses a plate whose
    .md5 member disagrees with its gcode."""
    gcode = PLAIN
    good, bad = tmp_path / "good.gcode.3mf", tmp_path / "bad.gcode.3mf"
    for path, md5 in ((good, hashlib.md5(gcode).hexdigest()), (bad, hashlib.md5(b"other").hexdigest())):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("Metadata/plate_1.gcode", gcode)
            archive.writestr("Metadata/plate_1.gcode.md5", md5.upper())
    assert json.loads(_out(capsys, str(good), "--json"))["gcode_md5"] == hashlib.md5(gcode).hexdigest()
    assert _out(capsys, str(bad)).splitlines()[0] == "bad.gcode.3mf, plate 1: 3 layers"
    assert main(["analyze", str(bad), "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("layerwise analyze: ") and "MD5" in captured.err


def test_only_the_head_is_sniffed_for_binary_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A text gcode whose first 8 KB hold no NUL is analysed, even with a stray NUL in a comment further on;
    one with a NUL in its head is refused as binary data."""
    body = b"G1 E5\nM73 L1\n" + b"G1 X1 E0.001\n" * 700  # 9,113 bytes
    late, early = tmp_path / "late.gcode", tmp_path / "early.gcode"
    late.write_bytes(body + b"; \0 comment\nG1 X1 E1\n")
    early.write_bytes(b"; \0 comment\n" + body)
    assert _out(capsys, str(late)).splitlines()[0] == "late.gcode, plate 1: 1 layers"
    assert main(["analyze", str(early)]) == 1
    assert capsys.readouterr().err == (
        f"layerwise analyze: {early} is neither a .gcode nor a .gcode.3mf file (it holds binary data)\n")
