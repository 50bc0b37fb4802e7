"""Issue 12 item 12: ``layerwise analyze`` for people: a summary by default, the per-layer table with
``--layers``, filaments numbered as the slicer shows them, no unexplained negative figures, a file that is
neither gcode nor a 3MF is an error, and ``| head`` ends quietly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from server.analysis import analyze_file
from server.cli import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "print-files"
TWO_COLOUR = FIXTURES / "p1s-2colour-bs2.05.gcode.3mf"  # slicer filaments 1 and 4
XMAS = FIXTURES / "xmas-pud-x1c-4colour.gcode.3mf"  # filaments 1, 2, 3 and 10; some layers retract net
NUMBER = re.compile(r"(?<![\w.])-\d+(\.\d+)?")


def _out(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["analyze", *args]) == 0
    return capsys.readouterr().out


def test_the_summary_lists_each_filament_as_the_slicer_numbers_it_with_totals(
        capsys: pytest.CaptureFixture[str]) -> None:
    out = _out(capsys, str(TWO_COLOUR))
    lines = out.splitlines()
    assert "100 layers" in lines[0]
    rows = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0] in ("1", "4")}
    assert set(rows) == {"1", "4"}  # 1-based, as Bambu Studio shows them (index 0 and 3)
    assert rows["1"][1:3] == ["PLA", "#FFFFFF"] and "7864.24" in rows["1"] and "23.46" in rows["1"]
    assert "7854.52" in rows["1"] and "23.43" in rows["1"] and "+0.03" in rows["1"]  # slicer's figures, difference
    total = next(line for line in lines if line.startswith("total"))
    assert total.split()[1:5] == ["10772.93", "32.13", "10770.33", "32.13"]  # ours and the slicer's, summed
    assert "prelude" not in out  # the per-layer table is --layers


def test_layers_prints_the_per_layer_table_with_1_based_headers(capsys: pytest.CaptureFixture[str]) -> None:
    out = _out(capsys, str(TWO_COLOUR), "--layers")
    assert "prelude" in out and "F1 mm" in out and "F4 mm" in out and "#0 mm" not in out
    assert len([line for line in out.splitlines() if re.match(r"^\s+\d+\s", line)]) >= 100


@pytest.mark.parametrize("path", sorted(p for p in FIXTURES.iterdir() if p.suffix != ".md"), ids=lambda p: p.name)
def test_a_negative_figure_is_always_explained(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args in ((), ("--layers",)):
        out = _out(capsys, str(path), *args)
        # Differences against the slicer are signed by design; any other negative number needs its reason.
        shown = [line for line in out.splitlines() if NUMBER.search(re.sub(r"[+-]\d+\.\d+ (g|mm)\b", "", line))]
        if shown:
            assert "net retraction" in out, shown[:3]


def test_net_retraction_is_named_where_it_happens(capsys: pytest.CaptureFixture[str]) -> None:
    analysis = analyze_file(XMAS)
    layer = next(n for n in range(1, analysis.layer_count + 1) if any(v < 0 for v in analysis.layer(n).values()))
    out = _out(capsys, str(XMAS), "--layers")
    row = next(line for line in out.splitlines() if line.split() and line.split()[0] == str(layer))
    assert "r" in row.split()[-1] or any(cell.endswith("r") for cell in row.split())
    assert "r = net retraction" in out


def test_json_keeps_its_machine_shape(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    doc = json.loads(_out(capsys, str(XMAS), "--json"))
    assert [f["index"] for f in doc["filaments"]] == [0, 1, 2, 9]


@pytest.mark.parametrize("content", [bytes(range(256)) * 16, b"\x89PNG\r\n\x1a\n" + b"\0" * 64], ids=["bytes", "png"])
def test_a_binary_file_is_an_error_not_zero_layers(tmp_path: Path, content: bytes,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(content)
    assert main(["analyze", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "neither a .gcode nor a .gcode.3mf" in err[0]


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    # The reading end is closed before the command writes anything: its first write meets a closed pipe,
    # as `layerwise analyze FILE --layers | head -1` does once head has its line.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "server", "analyze", str(XMAS), "--layers"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              timeout=120)
    finally:
        os.close(write_end)
    assert done.stderr == "" and done.returncode == 0, done.stderr
