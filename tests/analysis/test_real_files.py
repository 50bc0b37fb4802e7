"""Accuracy on real sliced files, metadata of each layout, the result API and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.analysis import PrintAnalysis, analyze_file, read_metadata
from server.cli import main

FIXTURES = Path(__file__).parents[1] / "fixtures" / "print-files"
FILES = sorted(p.name for p in FIXTURES.iterdir() if p.suffix in (".3mf", ".gcode"))


@pytest.fixture(scope="module")
def analyses() -> dict[str, PrintAnalysis]:
    return {name: analyze_file(FIXTURES / name) for name in FILES}


def test_all_samples_present() -> None:
    assert len(FILES) == 7


@pytest.mark.parametrize("name", FILES)
def test_total_within_2_percent_or_150_mm_of_the_slicer(analyses: dict[str, PrintAnalysis], name: str) -> None:
    analysis = analyses[name]
    ours = sum(f.mm for f in analysis.filaments.values())
    slicer = sum(f.slicer_mm or 0.0 for f in analysis.filaments.values())
    assert slicer > 0
    assert abs(ours - slicer) <= max(0.02 * slicer, 150.0), (ours, slicer)


# What Layerwise bills for each real file, per slicer filament, pinned to 0.01 mm, with the slicer's own
# figure beside it (gcode header, slice_info `used_m` or OrcaSlicer's footer). A change here is a change
# in what every user is billed: update the table (and docs/analysis.md) only on purpose, in review.
#   file                                       filament: (Layerwise mm, slicer mm)
PINNED: dict[str, dict[int, tuple[float, float]]] = {
    "p1s-2colour-bs2.05.gcode.3mf":         {0: (7864.24, 7854.52), 3: (2908.70, 2915.81)},
    "p1s-2colour-orca2.4.1.gcode":          {0: (2618.62, 2586.78), 1: (2576.90, 2604.14)},
    "p1s-658-layers-bs2.07.gcode.3mf":      {0: (9833.95, 9729.36)},
    "p2s-example-bs2.05.gcode.3mf":         {0: (2535.48, 2539.28)},
    "testqube-a1-1colour-bs2.04.gcode.3mf": {0: (362.43, 241.03)},
    "testqube-a1-4colour-bs2.04.gcode.3mf": {0: (197.87, 74.87), 1: (54.19, 50.19), 2: (93.27, 90.87),
                                             3: (27.09, 25.09)},
    "xmas-pud-x1c-4colour.gcode.3mf":       {0: (6859.57, 6810.0), 1: (8973.53, 9040.0), 2: (1460.39, 1480.0),
                                             9: (1492.54, 1510.0)},
}


def test_every_real_file_is_pinned() -> None:
    assert sorted(PINNED) == FILES


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("one_shot", [False, True], ids=["vector", "regex"])
def test_per_filament_totals_are_pinned_to_0_01_mm(name: str, one_shot: bool) -> None:
    """Both indexers (the vectorised one and the one-shot regex one) bill what the table says."""
    analysis = analyze_file(FIXTURES / name, one_shot=one_shot)
    got = {i: (round(f.mm, 2), f.slicer_mm) for i, f in analysis.filaments.items()}
    assert got == PINNED[name]


def test_x1c_four_colour_each_filament_within_1_5_percent(analyses: dict[str, PrintAnalysis]) -> None:
    analysis = analyses["xmas-pud-x1c-4colour.gcode.3mf"]
    assert sorted(analysis.filaments) == [0, 1, 2, 9]
    assert {i: f.slicer_mm for i, f in analysis.filaments.items()} == {0: 6810.0, 1: 9040.0, 2: 1480.0, 9: 1510.0}
    for f in analysis.filaments.values():
        assert f.slicer_mm is not None
        assert abs(f.mm - f.slicer_mm) <= 0.015 * f.slicer_mm, f


def test_grams_from_density_and_diameter(analyses: dict[str, PrintAnalysis]) -> None:
    f = analyses["xmas-pud-x1c-4colour.gcode.3mf"].filaments[1]
    assert (f.density, f.diameter, f.settings_id) == (1.32, 1.75, "Bambu PLA Matte @BBL X1C")
    assert f.g == pytest.approx(f.mm * 3.141592653589793 * 0.875**2 * 1.32 / 1000)
    assert f.slicer_g == 28.70


def test_first_filament_is_not_always_zero(analyses: dict[str, PrintAnalysis]) -> None:
    analysis = analyses["p1s-2colour-bs2.05.gcode.3mf"]
    assert sorted(analysis.filaments) == [0, 3]
    assert analysis.filaments[3].slicer_mm == 2915.81  # header lengths follow "; filament: 1,4"
    assert analysis.tool_changes[0].layer == 0


def test_p2s_indented_start_gcode_loads(analyses: dict[str, PrintAnalysis]) -> None:
    analysis = analyses["p2s-example-bs2.05.gcode.3mf"]
    assert analysis.tool_changes == ((0, 0),)
    assert analysis.layer_count == 30


def test_orca_plain_gcode_uses_footer_and_config(analyses: dict[str, PrintAnalysis]) -> None:
    analysis = analyses["p1s-2colour-orca2.4.1.gcode"]
    assert analysis.slicer == "OrcaSlicer 2.4.1"
    assert {i: f.slicer_mm for i, f in analysis.filaments.items()} == {0: 2586.78, 1: 2604.14}
    assert analysis.filaments[1].color == "#2080F0"
    assert analysis.filaments[0].density == 1.26
    assert len(analysis.tool_changes) == 51


def test_layer_counts_match_headers(analyses: dict[str, PrintAnalysis]) -> None:
    for name, analysis in analyses.items():
        meta = read_metadata(FIXTURES / name)
        assert analysis.layer_count == meta.header.layer_count, name


def test_metadata_layouts() -> None:
    old = read_metadata(FIXTURES / "xmas-pud-x1c-4colour.gcode.3mf")  # Bambu Studio 1.07
    assert old.slicer == "BambuStudio 01.07.07.89"
    assert old.header.lengths_mm == {}  # 1.x headers carry no lengths
    assert old.slice_filaments[3].index == 9 and old.slice_filaments[3].used_m == 1.51
    assert old.objects[0].name == "Brown [E1]"
    assert old.plate_json["filament_ids"] == [0, 1, 2, 9]
    new = read_metadata(FIXTURES / "testqube-a1-4colour-bs2.04.gcode.3mf", 1)  # Bambu Studio 2.04
    assert new.header.lengths_mm == {0: 74.87, 1: 50.19, 2: 90.87, 3: 25.09}
    assert new.header.specs[0].density == 1.24
    assert new.thumbnail == "Metadata/plate_1.png"


def test_used_through_is_cumulative_and_includes_the_prelude(analyses: dict[str, PrintAnalysis]) -> None:
    analysis = analyses["xmas-pud-x1c-4colour.gcode.3mf"]
    assert analysis.used_through(0) == analysis.prelude()
    running = analysis.prelude()
    for n in range(1, analysis.layer_count + 1):
        for i, mm in analysis.layer(n).items():
            running[i] = running.get(i, 0.0) + mm
        assert analysis.used_through(n) == pytest.approx(running)
    assert analysis.used_through(analysis.layer_count) == pytest.approx(
        {i: f.mm for i, f in analysis.filaments.items()}
    )


def test_layer_at_percent(analyses: dict[str, PrintAnalysis]) -> None:
    analysis = analyses["p1s-658-layers-bs2.07.gcode.3mf"]
    n = next(n for n in range(1, analysis.layer_count + 1) if len(analysis.marks[n]) >= 2)
    marks = analysis.marks[n]
    assert analysis.layer_at_percent(n, marks[0][0] - 1) == {}
    for percent in range(marks[0][0], 101):
        last = [usage for p, usage in marks if p <= percent][-1]  # the last mark at or below percent
        assert analysis.layer_at_percent(n, percent) == last
        assert all(mm <= analysis.layer(n)[i] + 1e-9 for i, mm in last.items())


def test_json_round_trips_exactly(analyses: dict[str, PrintAnalysis]) -> None:
    for analysis in analyses.values():
        doc = json.loads(json.dumps(analysis.to_json()))
        again = PrintAnalysis.from_json(doc)
        assert again == analysis
        assert again.used_through(3) == analysis.used_through(3)


def test_an_analysis_is_immutable_and_equal_by_its_fields(analyses: dict[str, PrintAnalysis]) -> None:
    analysis = analyses["p1s-2colour-bs2.05.gcode.3mf"]
    with pytest.raises(AttributeError):
        analysis.layer_count = 1  # type: ignore[misc]
    doc = analysis.to_json()
    assert PrintAnalysis.from_json({**doc, "gcode_md5": "other"}) != analysis
    assert PrintAnalysis.from_json(doc) == analysis
    assert "layer_count=" in repr(analysis) and "cumulative" not in repr(analysis)


def test_cli_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(FIXTURES / "p1s-2colour-bs2.05.gcode.3mf")]) == 0
    out = capsys.readouterr().out
    assert "100 layers" in out and "7854.52" in out and "prelude" not in out  # per-layer table: --layers


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(FIXTURES / "xmas-pud-x1c-4colour.gcode.3mf"), "--plate", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["layer_count"] == 192
    assert [f["index"] for f in doc["filaments"]] == [0, 1, 2, 9]
    assert set(doc["filaments"][0]) >= {"index", "mm", "g", "slicer_mm", "slicer_g"}


def test_cli_json_nulls_where_the_file_gives_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bare.gcode"
    path.write_bytes(b"T0\nM73 L1\nG1 X1 E2\n")
    assert main(["analyze", str(path), "--json"]) == 0
    (filament,) = json.loads(capsys.readouterr().out)["filaments"]
    assert filament == filament | {"index": 0, "mm": 2.0, "g": None, "slicer_mm": None, "slicer_g": None}


def test_cli_errors_exit_non_zero_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.gcode.3mf"
    junk.write_bytes(b"no zip")
    assert main(["analyze", str(junk)]) == 1
    assert main(["analyze", str(FIXTURES / "xmas-pud-x1c-4colour.gcode.3mf"), "--plate", "7"]) == 1
    assert main(["analyze", str(tmp_path / "missing.gcode.3mf")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("layerwise analyze: ") for line in err)


@pytest.mark.parametrize("name", FILES)
def test_the_benchmark_baseline_parser_agrees(analyses: dict[str, PrintAnalysis], name: str) -> None:
    # The token-dictionary parser of bench/analysis applies the same rules line by line.
    import zipfile

    from bench.analysis.baseline import baseline_usage

    path = FIXTURES / name
    if path.suffix == ".gcode":
        data = path.read_bytes()
    else:
        with zipfile.ZipFile(path) as archive:
            data = archive.read("Metadata/plate_1.gcode")
    layers, totals = baseline_usage([data[i : i + 65536] for i in range(0, len(data), 65536)])
    analysis = analyses[name]
    assert layers == analysis.layer_count
    assert totals == pytest.approx({i: mm for i, mm in analysis.totals().items()}, rel=1e-9)
