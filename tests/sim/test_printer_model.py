"""Pure parts of the virtual printer: gcode walker, report shapes, tray codes, CLI argument parsing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from cryptography import x509
from printer_clients import FIXTURES

from server.sim import cli
from server.sim.printer import AmsUnit, Tray
from server.sim.printer.certs import ensure_certificates
from server.sim.printer.gcode import FilamentChange, Progress, plan_from_file, plan_from_gcode
from server.sim.printer.model import global_tray_id, mapping_code, model_family
from server.sim.printer.report import ams_report, delta_report, units_from_report

MQTT = FIXTURES / "mqtt"


def test_plan_of_a_real_four_colour_file() -> None:
    plan = plan_from_file((MQTT / "testqube-a1-4colour-bs2.04.gcode.3mf").read_bytes())
    assert plan.total_layers == 50
    assert plan.filaments_used() == [0, 1, 3, 2]
    assert plan.layers[0].events[:2] == [Progress(0, 19), FilamentChange(0)]
    assert FilamentChange(1) in plan.layers[8].events


def test_walker_skips_unloads_and_non_filament_tool_changes() -> None:
    gcode = b"M73 P0 R9\nM620 S0A\nT1000\nM73 L1\nM73 P50\nM620 S255\nM620 S65535A\nM73 L2\nM620 S2A\n"
    plan = plan_from_gcode(gcode)
    assert plan.total_layers == 2
    assert plan.layers[1].events == [Progress(50, None)]
    assert plan.layers[2].events == [FilamentChange(2)]
    assert plan_from_file(gcode).layers == plan.layers


@pytest.mark.parametrize("tray,code", [(3, 3), (6, 258), (7, 259), (128, 0x8000), (255, 0xFF00), (-1, 0xFFFF)])
def test_mapping_code_matches_captured_values(tray: int, code: int) -> None:
    # 258 (X1C), 259 (H2D), 3 (P2S), 32768 (AMS HT 128), 65280 (external) all appear in the captures.
    assert mapping_code(tray) == code


def test_global_tray_ids() -> None:
    assert [global_tray_id(1, 2), global_tray_id(128, 0)] == [6, 128]


def test_units_read_back_from_a_real_capture_rebuild_the_same_trays() -> None:
    ams = json.loads((MQTT / "push_status_full_X1C_3xAMS_1xAMSHT_rfid_FINISH.json").read_text())["print"]["ams"]
    units = units_from_report(ams)
    assert [(u.id, u.kind, len(u.trays)) for u in units] == [(0, "ams", 4), (1, "ams", 4), (2, "ams", 4),
                                                             (128, "ams_ht", 1)]
    rebuilt = ams_report(units, tray_now=255, tray_tar=255, tray_pre=255, version=1)
    for real_unit, our_unit in zip(ams["ams"], rebuilt["ams"], strict=True):
        for real_tray, our_tray in zip(real_unit["tray"], our_unit["tray"], strict=True):
            for key in ("id", "tray_type", "tray_color", "tray_uuid", "tag_uid", "remain"):
                assert our_tray.get(key) == real_tray.get(key)
    assert rebuilt["ams_exist_bits"] == ams["ams_exist_bits"]


def test_delta_holds_changes_only() -> None:
    units = [AmsUnit(0, trays=[Tray(0), Tray(1), Tray(2), Tray(3)])]
    old = {"print": {"layer_num": 1, "total_layer_num": 9, "ams": ams_report(units, tray_now=0, tray_tar=0,
                                                                             tray_pre=0, version=1)}}
    new = {"print": {"layer_num": 2, "total_layer_num": 10, "ams": ams_report(units, tray_now=1, tray_tar=0,
                                                                              tray_pre=0, version=2)}}
    assert delta_report(old, new) == {"layer_num": 2, "ams": {"tray_now": "1", "version": 2}}


def test_model_families() -> None:
    assert model_family("a1 mini").delta_reports is True
    assert model_family("X1").reports_mapping is True
    with pytest.raises(ValueError):
        model_family("Z9")


def test_cli_argument_parsing() -> None:
    assert [(u.id, u.kind) for u in cli.parse_ams("ams:0,ams_ht:128")] == [(0, "ams"), (128, "ams_ht")]
    assert cli.parse_ams("none") == []
    assert cli.parse_mapping("3,0,-1,254") == [3, 0, -1, 254]
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_ams("spool:1")
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_mapping("a,b")


def test_cli_refuses_bad_input_before_starting(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["--model", "Z9"])) == 2
    assert cli.run(parser.parse_args(["--file", str(MQTT / "testqube-a1-4colour-bs2.04.gcode.3mf"),
                                      "--plate", "7"])) == 2
    assert "plate_7.gcode" in capsys.readouterr().err


def test_certificates_are_cached_per_serial_and_regenerated_when_inconsistent(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path, "01P00A000000001")
    ca = first.ca_cert.read_bytes()
    assert ensure_certificates(tmp_path, "01P00A000000001").ca_cert.read_bytes() == ca
    leaf = x509.load_pem_x509_certificates(first.chain.read_bytes())[0]
    assert leaf.subject.rfc4514_string() == "CN=01P00A000000001"
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    ensure_certificates(tmp_path, "03919D4A2404685")  # another serial: a new chain
    assert first.ca_cert.read_bytes() != ca
    ca = first.ca_cert.read_bytes()
    first.key.write_bytes(b"not a key")  # damaged: regenerated
    ensure_certificates(tmp_path, "03919D4A2404685")
    assert first.ca_cert.read_bytes() != ca
