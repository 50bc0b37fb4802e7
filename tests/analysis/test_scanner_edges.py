"""Scanner and archive edges a sampled mutation run found untested (issue 16): a comment after G92 is no
E word, a header comment with bytes that are not UTF-8, finish() once only, long names shortened in
messages, the not-a-zip message, the gcode size and the plate name an analysis reports."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest

from server.analysis import NotAZip, PlateNotFound, UnsafeArchive, analyze_file, analyze_gcode_stream, read_metadata
from server.analysis.archive import plate_number
from server.analysis.errors import AbsurdExtrusion
from server.analysis.gcode import MAX_LAYER_MM
from server.analysis.scanner import GcodeScanner

GCODE = b"M620 S0A\nT0\nG1 E5\nM73 L1\nG1 X1 E2.5\n"
MODEL_SETTINGS = b"""<?xml version="1.0" encoding="UTF-8"?>
<config><plate><metadata key="plater_id" value="1"/><metadata key="plater_name" value="Lid"/>
<metadata key="gcode_file" value="Metadata/plate_1.gcode"/></plate></config>"""


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("vectorised", [True, False])
def test_a_comment_after_g92_is_no_e_word(vectorised: bool) -> None:
    # Absolute extrusion: G92 resets E to 0 (the ";E7" is a comment), so the second move extrudes 8 mm.
    data = b"T0\nM82\nM73 L1\nG1 X1 E3\nG92 ;E7\nG1 X1 E8\nM73 L2\n"
    assert analyze_gcode_stream([data], vectorised=vectorised).layers[1] == {0: pytest.approx(11.0)}


def test_a_header_comment_that_is_not_utf8_is_read_not_fatal() -> None:
    usage = analyze_gcode_stream([b"; filament\xff\xfe: 5\n; total layer number: 1\n" + GCODE])
    assert usage.layer_count == 1


def test_finish_is_called_once() -> None:
    scanner = GcodeScanner()
    scanner.feed(GCODE)
    scanner.finish()
    with pytest.raises(RuntimeError, match=r"^finish\(\) called twice$"):
        scanner.finish()


def test_long_names_are_shortened_in_messages(tmp_path: Path) -> None:
    with pytest.raises(UnsafeArchive, match=r"unsafe member name '\.\./x{77}\.\.\.' \(path traversal\)"):
        analyze_file(_zip(tmp_path / "t.gcode.3mf", {"Metadata/plate_1.gcode": GCODE, "../" + "x" * 200: b"x"}))
    with pytest.raises(PlateNotFound, match=r"cannot tell the plate from 'y{80}\.\.\.' "):
        plate_number("y" * 200)


def test_a_3mf_that_is_no_zip_says_what_it_should_be(tmp_path: Path) -> None:
    path = tmp_path / "x.gcode.3mf"
    path.write_bytes(b"G1 E1\n")
    with pytest.raises(NotAZip, match=r"^not a zip archive \(a \.gcode\.3mf is a zip\)$"):
        analyze_file(path)


def test_the_analysis_reports_the_gcode_size_and_the_plate_name(tmp_path: Path) -> None:
    path = _zip(tmp_path / "t.gcode.3mf", {"Metadata/plate_1.gcode": GCODE,
                                            "Metadata/model_settings.config": MODEL_SETTINGS})
    assert analyze_file(path).gcode_bytes == len(GCODE)
    assert read_metadata(path).plate_name == "Lid"


@pytest.mark.parametrize("vectorised", [True, False])
def test_a_layer_of_exactly_the_bound_is_accepted(vectorised: bool) -> None:
    half = MAX_LAYER_MM / 2
    data = f"T0\nM83\nM73 L1\nG1 X1 E{half}\nG1 X1 E{half}\nM73 L2\n".encode()
    assert analyze_gcode_stream([data], vectorised=vectorised).layers[1] == {0: MAX_LAYER_MM}


def test_the_thumbnail_is_the_one_the_model_settings_name(tmp_path: Path) -> None:
    settings = MODEL_SETTINGS.replace(b"</plate>", b'<metadata key="thumbnail_file" value="Metadata/lid.png"/></plate>')
    path = _zip(tmp_path / "t.gcode.3mf", {"Metadata/plate_1.gcode": GCODE, "Metadata/model_settings.config": settings,
                                            "Metadata/lid.png": b"\x89PNG", "Metadata/plate_1.png": b"\x89PNG"})
    assert read_metadata(path).thumbnail == "Metadata/lid.png"


def test_without_numpy_the_vector_engine_is_refused_by_name_and_the_default_falls_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("server.analysis.scanner.vector_module", lambda: None)  # as if numpy were missing
    with pytest.raises(RuntimeError, match=r"^numpy is not installed$"):
        GcodeScanner(vectorised=True).feed(GCODE)
    scanner = GcodeScanner()
    scanner.feed(GCODE)
    assert scanner.finish().layer_count == 1


def test_a_scanner_names_a_bad_line_by_its_number_unless_told_not_to_count() -> None:
    data = b"T0\nM73 L1\nG1 E5\nG1 X1 E" + b"9" * 30 + b"\n"
    named = {True: "line 4 (layer 1): ", False: "the line at byte 16 (layer 1): "}
    for scanner, counting in ((GcodeScanner(), True), (GcodeScanner(count_lines=False), False)):
        with pytest.raises(AbsurdExtrusion, match="^" + re.escape(named[counting])):
            scanner.feed(data)
            scanner.finish()
