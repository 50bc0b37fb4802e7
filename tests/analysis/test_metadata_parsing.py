"""The 3MF's own metadata as Bambu Studio writes it (hand-written XML in the shape of the real files'
Metadata/slice_info.config and model_settings.config): the client version, the plate's filaments with
the slicer's own figures, its objects and which are skipped, the plate's model settings found by number
or by gcode file, the highest filament number accepted, and what a JSON member's error says. Written
from survivors of ``python -m bench.mutation`` (issue 16)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from server.analysis import analyze_file
from server.analysis.errors import BadMetadata
from server.analysis.metadata import (
    MAX_FILAMENT_INDEX,
    ArchiveMetadata,
    PlateObject,
    parse_header,
    parse_model_settings,
    parse_plate_json,
    parse_slice_info,
    specs_from_settings,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "print-files"

LAST = MAX_FILAMENT_INDEX + 1  # the highest filament number (1-based) a slicer file may use

SLICE_INFO = f"""<?xml version="1.0" encoding="UTF-8"?>
<config>
  <header>
    <header_item key="X-BBL-Client-Type" value="slicer"/>
    <header_item key="X-BBL-Client-Version" value="02.05.00.66"/>
  </header>
  <plate>
    <metadata key="index" value="1"/>
    <filament id="2" type="PETG" color="#000000" used_m="1.00" used_g="3.00"/>
  </plate>
  <plate>
    <metadata key="index" value="2"/>
    <metadata key="prediction" value="7745"/>
    <metadata key="weight" value="32.12"/>
    <object identify_id="89" name="cube" skipped="false" />
    <object identify_id="111" name="" skipped="true" />
    <filament id="1" type="PLA" color="#FFFFFF" used_m="7.85" used_g="23.43"/>
    <filament id="{LAST}" type="PLA" color="#161616" used_m="2.92" used_g="8.70"/>
    <filament id="{LAST + 1}" type="PLA" color="#161616" used_m="9" used_g="9"/>
  </plate>
</config>""".encode()


def test_slice_info_gives_the_version_and_the_plates_filaments_and_objects() -> None:
    version, meta = parse_slice_info(SLICE_INFO, 2)
    assert version == "02.05.00.66"
    assert meta.prediction_s == 7745 and meta.weight_g == pytest.approx(32.12)
    assert [(f.index, f.type, f.color, f.used_m, f.used_g) for f in meta.slice_filaments] == [
        (0, "PLA", "#FFFFFF", pytest.approx(7.85), pytest.approx(23.43)),
        (LAST - 1, "PLA", "#161616", pytest.approx(2.92), pytest.approx(8.70)),
    ]  # number LAST + 1 is no filament
    assert meta.objects == (PlateObject("89", "cube", False), PlateObject("111", "", True))


def test_an_object_without_id_or_name_reads_as_empty_text() -> None:
    data = SLICE_INFO.replace(b'identify_id="89" name="cube" ', b"")
    _, meta = parse_slice_info(data, 2)
    assert meta.objects[0] == PlateObject("", "", False)


MODEL_SETTINGS = b"""<?xml version="1.0" encoding="UTF-8"?>
<config>
  <plate>
    <metadata key="plater_id" value="1"/>
    <metadata key="plater_name" value="first"/>
    <metadata key="gcode_file" value="Metadata/plate_1.gcode"/>
  </plate>
  <plate>
    <metadata key="plater_id" value="2"/>
    <metadata key="plater_name" value="second"/>
    <metadata key="gcode_file" value=""/>
  </plate>
  <plate>
    <metadata key="plater_name" value="third, found by its gcode file"/>
    <metadata key="gcode_file" value="Metadata/plate_3.gcode"/>
  </plate>
</config>"""


@pytest.mark.parametrize(("plate", "name"), [(1, "first"), (2, "second"), (3, "third, found by its gcode file")])
def test_model_settings_of_a_plate_by_number_or_gcode_file(plate: int, name: str) -> None:
    assert parse_model_settings(MODEL_SETTINGS, plate)["plater_name"] == name


def test_model_settings_of_a_plate_not_listed_are_empty() -> None:
    assert parse_model_settings(MODEL_SETTINGS, 4) == {}


def test_the_header_accepts_filament_numbers_up_to_the_last() -> None:
    header = parse_header({"filament": f"1,{LAST},{LAST + 1}"})
    assert header.used_filaments == (0, LAST - 1)


def test_a_json_members_error_says_what_is_wrong() -> None:
    with pytest.raises(BadMetadata, match="plate json is not valid JSON: Expecting value"):
        parse_plate_json(b"{\"a\": }")
    with pytest.raises(BadMetadata, match="plate json is not valid JSON: nested too deeply"):
        parse_plate_json(b"[" * 100_000 + b"]" * 100_000)


def test_the_header_gives_each_used_filaments_length_and_weight() -> None:
    header = parse_header({"filament": "1,4", "total filament length [mm]": "7854.52,2915.81",
                           "total filament weight [g]": "23.43,8.70"})
    assert header.lengths_mm == {0: pytest.approx(7854.52), 3: pytest.approx(2915.81)}
    assert header.weights_g == {0: pytest.approx(23.43), 3: pytest.approx(8.70)}


def test_filament_specs_are_numbered_from_0_in_the_settings_order() -> None:
    specs = specs_from_settings({"filament_type": ["PLA", "PETG"], "filament_density": ["1.24", "1.27"]})
    assert [(i, s.index, s.type, s.density) for i, s in specs.items()] == [(0, 0, "PLA", 1.24), (1, 1, "PETG", 1.27)]


def test_the_plate_json_may_list_filament_0() -> None:
    meta = ArchiveMetadata(plate=1, plate_json={"filament_ids": [0, 3]})
    assert meta.used_filaments() == (0, 3)


def test_the_analysis_carries_the_plates_weight_from_slice_info() -> None:
    analysis = analyze_file(FIXTURES / "p1s-2colour-bs2.05.gcode.3mf")
    assert analysis.weight_g == pytest.approx(32.12)  # <metadata key="weight" value="32.12"/> in the file
    # project_settings.config: filament_settings_id "Generic PLA", diameter 1.75, density 1.24 (filaments 1, 4)
    assert {(f.settings_id, f.diameter, f.density) for f in analysis.filaments.values()} == {("Generic PLA", 1.75,
                                                                                               1.24)}


def test_a_filament_the_header_gives_a_length_for_is_listed_even_if_nothing_else_names_it(tmp_path: Path) -> None:
    """The analysis lists every filament any source says the plate uses: Layerwise's own count, the slicer's
    list (slice_info here), and the header's per-filament lengths when the header names the used filaments.
    Here slice_info lists filament 1 only while the header gives 4 mm of filament 2, which the gcode never
    loads: filament 2 is listed with 0 mm beside the slicer's 4 mm, so the disagreement shows."""
    slice_info = (b'<config><plate><metadata key="index" value="1"/>'
                  b'<filament id="1" type="PLA" color="#FFFFFF" used_m="0.01" used_g="0.03"/></plate></config>')
    gcode = (b"; HEADER_BLOCK_START\n; filament: 1,2\n; total filament length [mm] : 10.00,4.00\n"
             b"; HEADER_BLOCK_END\nT0\nG1 E4\nM73 L1\nG1 X1 E6\n")
    path = tmp_path / "two.gcode.3mf"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Metadata/plate_1.gcode", gcode)
        archive.writestr("Metadata/slice_info.config", slice_info)
    analysis = analyze_file(path)
    assert [(f.index, f.mm, f.slicer_mm) for f in analysis.filaments.values()] == [(0, 10.0, 10.0), (1, 0.0, 4.0)]
