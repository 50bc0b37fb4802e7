"""Lines the scanner reads one by one (``G01``, virtual ``;VG1`` flushes, indented lines, header comments)
and the 3MF's plate metadata at its edges: the E position carried through them in absolute and relative
mode, only virtual moves counted and only their E word before the first ``;``, header comments split at
their first separator, a model_settings.config entry without a value, a plate JSON that is no object,
and broken XML named in the message. Written from survivors of the full mutation run (issue 16,
point 6); the expected figures are worked out by hand in the comments."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from server.analysis import BadMetadata, analyze_file, analyze_gcode_stream, read_metadata

BOTH = pytest.mark.parametrize("vectorised", [True, False], ids=["numpy", "regex"])
GCODE = b"M620 S0A\nT0\nG1 E5\nM73 L1\nG1 X1 E2.5\n"


@BOTH
def test_an_absolute_mode_g01_move_extrudes_up_to_its_position(vectorised: bool) -> None:
    # M82: E5 (5 mm), G01 E7 (2 mm more, a line read on its own), E10 (3 mm more): 10 mm in layer 1.
    usage = analyze_gcode_stream([b"M82\nM73 L1\nT0\nG1 E5\nG01 E7\nG1 E10\n"], vectorised=vectorised)
    assert usage.layers[1] == {0: 10.0}


@BOTH
def test_relative_moves_advance_the_position_an_absolute_move_then_starts_from(vectorised: bool) -> None:
    # M83: E5 then G01 E2 leave the extruder at 7; after M82, E10 pushes 3 mm more: 10 mm in all.
    usage = analyze_gcode_stream([b"M83\nM73 L1\nT0\nG1 E5\nG01 E2\nM82\nG1 E10\n"], vectorised=vectorised)
    assert usage.layers[1] == {0: 10.0}


@BOTH
def test_only_a_virtual_moves_own_e_word_counts(vectorised: bool) -> None:
    # 1 mm pushed, then 4 mm in a virtual move; an E word in a virtual line's comment, an empty virtual line
    # and a virtual G92 (sets the position, extrudes nothing) add nothing.
    data = b"M73 L1\nT0\nG1 E1\n;VG1 F300 ; was E9 ; see notes\n;VG1 E4 F200\n;V\n;VG92 E5\n"
    assert analyze_gcode_stream([data], vectorised=vectorised).layers[1] == {0: 5.0}


@BOTH
def test_an_indented_comment_is_no_header_line(vectorised: bool) -> None:
    # Slicers write their header unindented; an indented comment (Bambu indents one per layer) is skipped by
    # both engines, even one that reads like a header line.
    data = (b"; filament used [mm] = 7.5\n  ; total layer number: 7\n ; filament_type = PETG\n"
            b"G1 E5\nM73 L1\nG1 X1 E2.5\n")
    usage = analyze_gcode_stream([data], vectorised=vectorised)
    assert usage.header == {"filament used [mm]": "7.5"} and usage.layer_count == 1


def _archive(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("Metadata/plate_1.gcode", GCODE)
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_a_model_settings_entry_without_a_value_is_missing(tmp_path: Path) -> None:
    settings = (b'<?xml version="1.0" encoding="UTF-8"?>\n<config><plate>'
                b'<metadata key="plater_id" value="1"/><metadata key="plater_name"/>'
                b'<metadata key="thumbnail_file"/></plate></config>')
    path = _archive(tmp_path / "p.gcode.3mf", {"Metadata/model_settings.config": settings,
                                               "Metadata/plate_1.png": b"\x89PNG"})
    meta = read_metadata(path)
    assert meta.plate_name is None and meta.thumbnail == "Metadata/plate_1.png"  # the default thumbnail


def test_a_plate_json_that_is_no_object_is_read_as_empty(tmp_path: Path) -> None:
    path = _archive(tmp_path / "p.gcode.3mf", {"Metadata/plate_1.json": b"[1, 2, 3]"})
    assert read_metadata(path).plate_json == {}
    assert analyze_file(path).layer_count == 1


def test_broken_model_settings_xml_is_named(tmp_path: Path) -> None:
    path = _archive(tmp_path / "p.gcode.3mf", {"Metadata/model_settings.config": b"<config><plate></config>"})
    with pytest.raises(BadMetadata, match=r"^model_settings\.config is not valid XML: "):
        analyze_file(path)


@BOTH
def test_header_comments_split_at_their_first_separator_and_the_first_one_counts(vectorised: bool) -> None:
    # "; key = value" or "; key: value", split at the first "=" or ":" (values may hold either); an undecodable
    # byte is replaced; a key repeated later (the config block) does not replace the header's; other keys
    # are not header keys.
    data = (b"; filament_vendor = A=B:C\n; filament_type: PLA:x=y\n; filament_colour:#FFFFFF\n"
            b"; filament_settings_id = caf\xe9\n; filament_vendor = later\n; some_other_key = 1\n"
            b"G1 E5\nM73 L1\nG1 X1 E2.5\n")
    assert analyze_gcode_stream([data], vectorised=vectorised).header == {
        "filament_vendor": "A=B:C", "filament_type": "PLA:x=y", "filament_colour": "#FFFFFF",
        "filament_settings_id": "caf\ufffd",
    }
