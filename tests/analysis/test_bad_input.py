"""Bad input is a file error (an AnalysisError naming what is wrong), never a crash, a bogus number or a
runaway: non-finite or absurd extrusion, nonsense plate names, overlong lines, files without layers."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import pytest

from server.analysis import (
    AnalysisError,
    BadMetadata,
    Limits,
    PlateNotFound,
    UnsafeArchive,
    analyze_file,
    analyze_gcode_stream,
    read_metadata,
)
from server.analysis.archive import plate_number
from server.analysis.errors import AbsurdExtrusion, BadGcode, GcodeTooComplex, LineTooLong, NoLayers
from server.analysis.gcode import MAX_CELLS, MAX_LAYER, MAX_LAYER_MM, MAX_LINE_BYTES
from server.analysis.scanner import GcodeScanner
from server.cli import main

FIXTURES = Path(__file__).parents[1] / "fixtures" / "print-files"
GCODE = b"M620 S0A\nT0\nG1 E5\nM73 L1\nG1 X1 E2.5\nM73 L2\nG1 X2 E1\n"
HUGE = b"9" * 400  # float() makes this inf


def make_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def both(data: bytes, chunk: int | None = None) -> list[object]:
    """The outcome of both indexers: the layers, or the error type and message."""
    outcomes: list[object] = []
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] if chunk else [data]
    for vectorised in (True, False):
        try:
            outcomes.append(analyze_gcode_stream(pieces, vectorised=vectorised).layers)
        except AnalysisError as err:
            outcomes.append((type(err), str(err)))
    return outcomes


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("layerwise analyze: "), captured.err
    assert "Traceback" not in captured.err and "Infinity" not in captured.out
    return lines[0]


# -- item 13: non-finite and absurd extrusion ------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b"G1 X1 E" + HUGE,  # plain move: the indexers' segment sum
        b"  G1 X1 E" + HUGE,  # indented: the slow path
        b"G1 X1 E-" + HUGE,
        b";VG1 E" + HUGE,
        b"M620.11 S1 E" + HUGE,
        b"G1 X1 E200000",  # 200 m in one move
    ],
)
def test_non_finite_or_absurd_extrusion_is_a_file_error_naming_line_and_layer(line: bytes) -> None:
    data = GCODE + b"M73 L3\nG1 X1 E1\n" + line + b"\nM73 L4\nG1 E1\n"
    fast, slow = both(data)
    assert fast == slow, "both indexers refuse it the same way"
    kind, message = fast  # type: ignore[misc]
    assert kind is AbsurdExtrusion and issubclass(kind, BadGcode)
    assert "line 10" in message and "layer 3" in message, message
    shown = line.strip().decode()
    assert repr(shown if len(shown) <= 40 else shown[:40] + "...") in message, "the offending line is quoted"


def test_absurd_extrusion_is_refused_wherever_the_stream_is_cut() -> None:
    data = GCODE + b"M73 L3\n" + b"G1 X1 E1.5\n" * 200 + b"G1 X1 E" + HUGE + b"\n" + b"G1 X1 E1\n" * 50
    for chunk in (7, 64, 1000):
        fast, slow = both(data, chunk)
        assert fast == slow
        assert fast[0] is AbsurdExtrusion and "line 209" in fast[1]  # type: ignore[index]


@pytest.mark.parametrize(
    "data",
    [
        GCODE + b"M73 L3\n" + b"G1 X1 E1.5\n" * 200 + b"G1 X1 E" + HUGE + b"\n" + b"G1 X1 E1\n" * 50,
        GCODE + b"G1 X" + b"1" * MAX_LINE_BYTES + b"\n" + GCODE,
        GCODE + b"; " + b"x" * (MAX_LINE_BYTES + 10),
        b"G1 X" + b"1" * MAX_LINE_BYTES + b"\n",
    ],
    ids=["absurd", "long", "long-unended", "long-first"],
)
def test_without_counting_lines_the_error_names_the_byte_its_line_starts_at(data: bytes) -> None:
    """A scan that does not count lines (``layerwise analyze``) names the line's first byte; counting the
    newlines before it gives the number a counting scan names."""
    for chunk in (7, 1000, None):
        pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] if chunk else [data]
        for vectorised in (True, False):
            outcomes = []
            for count_lines in (True, False):
                with pytest.raises(BadGcode) as caught:
                    analyze_gcode_stream(pieces, vectorised=vectorised, count_lines=count_lines)
                outcomes.append(caught.value)
            counted, offset_only = outcomes
            assert offset_only.line is None and offset_only.offset == counted.offset
            assert str(offset_only).startswith(f"the line at byte {counted.offset}")
            assert counted.offset == 0 or data[counted.offset - 1 : counted.offset] == b"\n"
            assert counted.line == data.count(b"\n", 0, counted.offset) + 1
            assert str(offset_only.numbered(counted.line)) == str(counted)
            assert type(offset_only.numbered(counted.line)) is type(counted)


def test_layerwise_analyze_numbers_the_line_of_an_error_in_an_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = GCODE + b"M73 L3\n" + b"G1 X1 E1.5\n" * 200 + b"G1 X1 E" + HUGE + b"\n" + b"G1 X1 E1\n" * 50
    path = make_zip(tmp_path / "absurd.gcode.3mf", {"Metadata/plate_1.gcode": data})
    with pytest.raises(AbsurdExtrusion, match=r"^line 209 \(layer 3\)"):
        analyze_file(path, one_shot=True)
    assert main(["analyze", str(path)]) == 1
    assert "layerwise analyze: line 209 (layer 3)" in one_line_error(capsys)


def test_many_moves_adding_up_past_the_layer_bound_are_refused() -> None:
    per_move = 1000.0
    moves = int(MAX_LAYER_MM / per_move) + 2
    data = b"T0\nM73 L1\n" + b"G1 X1 E1000\n" * moves + b"M73 L2\n"
    fast, slow = both(data)
    assert fast == slow and fast[0] is AbsurdExtrusion  # type: ignore[index]
    assert "layer 1" in fast[1]  # type: ignore[index]


def test_absolute_mode_jump_is_refused() -> None:
    data = b"T0\nM82\nM73 L1\nG92 E0\nG1 X1 E5\nG92 E" + HUGE + b"\nG1 X1 E6\nM73 L2\n"
    fast, slow = both(data)
    assert fast == slow and fast[0] is AbsurdExtrusion  # type: ignore[index]


def test_real_files_stay_far_below_the_bound() -> None:
    from server.analysis import analyze_file as analyse

    for path in sorted(FIXTURES.iterdir()):
        if path.suffix in (".3mf", ".gcode"):
            analysis = analyse(path)
            peak = max(abs(mm) for layer in analysis.layers for mm in layer.values())
            assert peak * 100 < MAX_LAYER_MM, path.name


def test_cli_json_never_writes_infinity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_zip(tmp_path / "inf.gcode.3mf", {"Metadata/plate_1.gcode": GCODE + b"G1 X1 E" + HUGE + b"\n"})
    assert main(["analyze", str(path), "--json"]) == 1
    assert "layer 2" in one_line_error(capsys)


def test_non_finite_metadata_is_treated_as_missing(tmp_path: Path) -> None:
    header = (
        b"; filament: 1\n; total filament length [mm] : " + HUGE + b"\n; total layer number: " + HUGE + b"\n"
        b"; filament_density: " + HUGE + b"\n; filament_diameter: 1.75\n"
    )
    path = tmp_path / "meta.gcode"
    path.write_bytes(header + GCODE)
    analysis = analyze_file(path)
    text = json.dumps(analysis.to_json(), allow_nan=False)
    assert "Infinity" not in text
    assert analysis.filaments[0].slicer_mm is None and analysis.filaments[0].g is None
    assert read_metadata(path).header.layer_count is None


# -- item 14: plate names and numbers --------------------------------------------------------------


def test_plate_member_with_thousands_of_digits_is_not_a_plate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "Metadata/plate_" + "7" * 5000 + ".gcode"
    only = make_zip(tmp_path / "only.gcode.3mf", {name: GCODE})
    with pytest.raises(PlateNotFound, match="no sliced plate"):
        analyze_file(only)
    assert main(["analyze", str(only)]) == 1
    one_line_error(capsys)
    beside = make_zip(tmp_path / "beside.gcode.3mf", {name: GCODE, "Metadata/plate_1.gcode": GCODE})
    assert analyze_file(beside).layer_count == 2


@pytest.mark.parametrize(
    "plate", ["7" * 5000, "Metadata/plate_" + "7" * 5000 + ".gcode", "\u00b2", "Metadata/plate_\u0663.gcode"]
)
def test_plate_reference_with_thousands_of_digits_or_odd_digits(plate: str) -> None:
    with pytest.raises(PlateNotFound):
        plate_number(plate)


def test_plate_with_leading_zero_is_not_mistaken_for_another(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "zero.gcode.3mf", {"Metadata/plate_01.gcode": GCODE})
    with pytest.raises(PlateNotFound):
        analyze_file(path)


@pytest.mark.parametrize("line", [b"M73 L" + b"9" * 5000, b"T" + b"9" * 5000, b"M73 P" + HUGE, b"M73 L" + HUGE])
def test_huge_words_are_ignored_not_fatal(line: bytes) -> None:
    fast, slow = both(GCODE + line + b"\nG1 E1\n")
    assert fast == slow and isinstance(fast, tuple) and not isinstance(fast[0], type)


def test_deeply_nested_json_metadata_is_bad_metadata(tmp_path: Path) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    for member in ("Metadata/plate_1.json", "Metadata/project_settings.config"):
        members = {"Metadata/plate_1.gcode": GCODE, member: deep}
        path = make_zip(tmp_path / "deep.gcode.3mf", members, zipfile.ZIP_STORED)
        with pytest.raises(BadMetadata):
            analyze_file(path)


def test_other_compression_methods_are_refused(tmp_path: Path) -> None:
    # bz2/lzma members would inflate a whole compressed block at once, past the ratio checks.
    path = make_zip(tmp_path / "bz.gcode.3mf", {"Metadata/plate_1.gcode": GCODE}, zipfile.ZIP_BZIP2)
    with pytest.raises(UnsafeArchive, match="compression"):
        analyze_file(path)


def test_encrypted_member_is_a_file_error(tmp_path: Path) -> None:
    data = bytearray(make_zip(tmp_path / "plain.gcode.3mf", {"Metadata/plate_1.gcode": GCODE}).read_bytes())
    for magic, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local header, central directory
        at = data.index(magic) + flags_at
        data[at] |= 0x1  # "encrypted"
    path = tmp_path / "enc.gcode.3mf"
    path.write_bytes(bytes(data))
    with pytest.raises(UnsafeArchive, match="encrypted"):
        analyze_file(path)


# -- item 15: overlong lines, no layers ------------------------------------------------------------


def test_line_without_newline_past_the_limit_is_a_file_error() -> None:
    data = GCODE + b"; " + b"x" * (MAX_LINE_BYTES + 10)
    for chunk in (None, 4096):
        fast, slow = both(data, chunk)
        assert fast == slow and fast[0] is LineTooLong, fast  # type: ignore[index]
        assert "line 8" in fast[1]  # type: ignore[index]


@pytest.mark.parametrize("length", [MAX_LINE_BYTES + 1, 3 * MAX_LINE_BYTES])
def test_complete_overlong_line_is_a_file_error(length: int) -> None:
    data = GCODE + b"G1 X" + b"1" * (length - 4) + b"\n" + GCODE
    for chunk in (None, 5000):
        fast, slow = both(data, chunk)
        assert fast == slow and fast[0] is LineTooLong, fast  # type: ignore[index]
        assert "line 8 is longer than 256 KiB" in fast[1]  # type: ignore[index]


def test_lines_up_to_the_limit_are_fine() -> None:
    data = GCODE + b"; machine_start_gcode = " + b"x" * (MAX_LINE_BYTES - 24) + b"\n" + b"G1 E1\n"
    fast, slow = both(data)
    assert fast == slow and not isinstance(fast[0], type)  # type: ignore[index]


@pytest.mark.parametrize("vectorised", [True, False], ids=["numpy", "regex"])
def test_a_line_at_the_limit_still_unfinished_when_a_chunk_ends_is_fine(vectorised: bool) -> None:
    # The line's newline comes in a later chunk: while it is carried it is measured without it. As a
    # download's pieces fall: alone in a chunk, at the end of one with newlines, and as the file's first line.
    line = b"G1 E1 ;" + b"x" * (MAX_LINE_BYTES - 7)
    assert len(line) == MAX_LINE_BYTES
    for chunks in ([GCODE, line, b"\nG1 E2\n"], [GCODE + line, b"\nG1 E2\n"], [line, b"\n" + GCODE + b"G1 E2\n"]):
        usage = analyze_gcode_stream(chunks, vectorised=vectorised)
        assert usage.layers == analyze_gcode_stream([b"".join(chunks)], vectorised=vectorised).layers
        assert sum(layer.get(0, 0.0) for layer in usage.layers) == pytest.approx(11.5)  # 8.5 + 1 + 2


def test_an_unfinished_line_past_the_limit_is_refused_by_the_chunk_that_makes_it_too_long() -> None:
    # Before the carried part can grow any further: the feed of that chunk refuses, not a later one.
    scanner = GcodeScanner()
    scanner.feed(GCODE)
    scanner.feed(b"; " + b"x" * (MAX_LINE_BYTES - 2))  # exactly at the limit: kept
    with pytest.raises(LineTooLong):
        scanner.feed(b"x")


def test_a_100_mb_line_is_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "long.gcode.3mf"
    block = (b"G1 X1 Y1 Z1 " * 8192)[: 1 << 16]
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("Metadata/plate_1.gcode", "w") as out,
    ):
        for _ in range(100 << 20 >> 16):
            out.write(block)
    # Repetitive text deflates past the zip-bomb ratio: lift that cap to reach the line check.
    with pytest.raises(LineTooLong, match="line 1 "):
        analyze_file(path, limits=Limits(max_ratio=1e6))
    plain = tmp_path / "long.gcode"
    plain.write_bytes(GCODE + block * 32)
    assert main(["analyze", str(plain)]) == 1
    assert "line 8 is longer than" in one_line_error(capsys)


@pytest.mark.parametrize("content", [b"", b"\n\n", b"; just a comment\nG28\nG1 X1 E1\n"])
def test_gcode_without_layers_is_a_file_error(
    tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "empty.gcode"
    plain.write_bytes(content)
    archive = make_zip(tmp_path / "empty.gcode.3mf", {"Metadata/plate_1.gcode": content})
    for path in (plain, archive):
        with pytest.raises(NoLayers, match=r"no layers .*: empty, or not a gcode sliced for a Bambu Lab printer$"):
            analyze_file(path)
        assert main(["analyze", str(path)]) == 1
        assert "no layers" in one_line_error(capsys)


def test_marks_and_tool_changes_stay_bounded() -> None:
    data = b"T0\nM73 L1\n" + b"M73 P5\nG1 E1\nM73 P4\n" * 5000 + b"M73 P6\n"
    usage = analyze_gcode_stream([data])
    assert len(usage.marks[1]) <= 101
    assert usage.layers[1][0] == pytest.approx(5000)
    assert math.isfinite(usage.layers[1][0])


def test_more_per_layer_figures_than_the_bound_is_a_file_error() -> None:
    """Every (layer, filament) figure kept counts against MAX_CELLS, the cumulative ones at the end
    included: one marker at the last layer allowed makes MAX_LAYER + 1 layers, so 9 filaments stay
    within the bound (1,800,009 figures) and 10 go past it (2,000,010), whichever indexer reads them."""
    assert (MAX_LAYER + 1) * 9 < MAX_CELLS < (MAX_LAYER + 1) * 10

    def loads(count: int) -> bytes:
        return b"".join(b"T%d\nG1 E1\n" % tool for tool in range(count)) + b"M73 L%d\n" % MAX_LAYER

    assert len(analyze_gcode_stream([loads(9)]).layers) == MAX_LAYER + 1
    message = f"more than {MAX_CELLS} per-layer figures (layers x filaments x progress marks): not a real print"
    assert both(loads(10)) == [(GcodeTooComplex, message)] * 2


def test_a_huge_central_directory_is_refused_before_parsing(tmp_path: Path) -> None:
    # zipfile reads the directory whole and builds an entry per record: capped before it does.
    members = {"Metadata/plate_1.gcode": GCODE} | {f"{i:05d}" + "x" * 60_000: b"" for i in range(80)}
    path = make_zip(tmp_path / "wide.gcode.3mf", members, zipfile.ZIP_STORED)
    with pytest.raises(UnsafeArchive, match="directory"):
        analyze_file(path)
    assert analyze_file(path, limits=Limits(max_directory_bytes=8 << 20)).layer_count == 2


def test_a_stored_analysis_with_infinity_or_junk_is_refused_on_load() -> None:
    # A job checkpoint written before non-finite figures were refused must not resume billing them.
    from server.analysis import PrintAnalysis

    doc = analyze_gcode_stream([GCODE])
    good = PrintAnalysis(layer_count=doc.layer_count, plate=1, gcode_md5="", filaments={}, tool_changes=(),
                         layers=doc.layers, marks=doc.marks).to_json()
    stored = json.loads(json.dumps(good).replace('"1": 1.0', '"1": Infinity').replace("2.5", "Infinity"))
    with pytest.raises(ValueError, match="non-finite"):
        PrintAnalysis.from_json(stored)
    for junk in ({**good, "layers": 5}, {**good, "marks": [[None]]}, [], {**good, "filaments": [{"x": 1}]}):
        with pytest.raises((ValueError, KeyError)):
            PrintAnalysis.from_json(junk)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", [b"; total layer number", b"; filament", b"; filament_density"])
def test_header_comment_with_a_long_run_of_blanks_is_read_in_linear_time(key: bytes) -> None:
    # The header-comment regex backtracked quadratically on blanks: 32 KiB took 20 s, 200 KiB hours.
    data = GCODE + key + b" " * 200_000 + b"x\n; model" + b" " * 200_000 + b"\n" + key + b" \t= 7 \n"
    fast, slow = both(data)
    assert fast == slow and not isinstance(fast[0], type)  # type: ignore[index]
    assert analyze_gcode_stream([data]).header.get(key[2:].decode()) == "7"


def test_metadata_lists_stay_bounded(tmp_path: Path) -> None:
    # 250 000 filaments in project_settings or slice_info would be as many objects (memory by design).
    settings = json.dumps({"filament_type": ";".join(["PLA"] * 250_000), "filament_density": ["1.2"] * 250_000})
    slice_info = (
        b'<config><plate><metadata key="index" value="1"/>'
        + b'<filament id="1" type="PLA" used_m="1" used_g="3"/>' * 50_000
        + b"</plate></config>"
    )
    members = {
        "Metadata/plate_1.gcode": GCODE,
        "Metadata/project_settings.config": settings.encode(),
        "Metadata/slice_info.config": slice_info,
    }
    path = make_zip(tmp_path / "lists.gcode.3mf", members, zipfile.ZIP_STORED)
    meta = read_metadata(path)
    assert len(meta.specs) == 255 and meta.specs[254].type == "PLA"
    assert [f.index for f in meta.slice_filaments] == [0]
    assert analyze_file(path).filaments[0].density == 1.2


def test_config_members_are_capped_smaller_than_thumbnails(tmp_path: Path) -> None:
    big = b'{"filament_type": "' + b" " * (5 << 20) + b'"}'
    path = make_zip(tmp_path / "big.gcode.3mf", {"Metadata/plate_1.gcode": GCODE, "Metadata/plate_1.json": big},
                    zipfile.ZIP_STORED)
    with pytest.raises(UnsafeArchive, match="cap"):
        analyze_file(path)


@pytest.mark.parametrize("encoding", [b"TTF-8", b"cp932", b"utf-16"])
def test_xml_metadata_with_an_odd_encoding_is_bad_metadata(tmp_path: Path, encoding: bytes) -> None:
    # Found by the archive fuzz: one flipped bit in the XML declaration raised LookupError.
    xml = b'<?xml version="1.0" encoding="' + encoding + b'"?><config><plate/></config>'
    members = {"Metadata/plate_1.gcode": GCODE, "Metadata/model_settings.config": xml}
    path = make_zip(tmp_path / "enc.gcode.3mf", members)
    with pytest.raises(BadMetadata):
        analyze_file(path)
