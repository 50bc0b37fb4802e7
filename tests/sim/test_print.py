"""A print on the virtual printer: the reports match what real P1/A1 and X1 printers send."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from printer_clients import FIXTURES, ReportCollector, subscribed

from server.sim.printer import AmsUnit, Tray, VirtualPrinter

MQTT = FIXTURES / "mqtt"
TESTQUBE = MQTT / "testqube-a1-4colour-bs2.04.gcode.3mf"
JOB = "/cache/Testqube_Mulitcolor.gcode.3mf"


def _real_sequence() -> list[dict[str, Any]]:
    lines = (MQTT / "a1-fw01.07-Testqube_Multicolor_local.log").read_text().splitlines()
    return [json.loads(line.partition(" :: ")[2]) for line in lines if line.strip()]


def _tray_loads(prints: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(layer_num, tray) each time a tray finishes loading, merging deltas like a client must."""
    layer, tray_now, loads = 0, "255", []
    started = False
    for report in prints:
        if not started:
            started = report.get("gcode_state") == "PREPARE"
            continue
        layer = report.get("layer_num", layer)
        now = report.get("ams", {}).get("tray_now", tray_now)
        if now != tray_now and now != "255":
            loads.append((layer, now))
        tray_now = now
        if report.get("gcode_state") == "FINISH":
            break
    return loads


def _mapping() -> list[int]:
    expected = json.loads((MQTT / "a1-fw01.07-Testqube_Multicolor_local.expected.json").read_text())
    assignments = expected["expected_assignments"]
    return [int(assignments[str(i)]) for i in range(len(assignments))]


async def test_lan_print_on_a1_changes_trays_at_the_same_layers_as_the_real_printer(cert_dir: Path) -> None:
    async with VirtualPrinter(model="A1", ams=[AmsUnit(0, kind="ams_lite")], cert_dir=cert_dir) as printer, \
            subscribed(printer) as reports:
        printer.add_file(JOB, TESTQUBE)
        await printer.start_print(JOB, ams_mapping=_mapping(), announce=False)
        await printer.finish()
        await reports.wait_for(lambda m: m.get("print", {}).get("gcode_state") == "FINISH")

    real = [m["print"] for m in _real_sequence() if "print" in m]
    assert _tray_loads(reports.prints()) == _tray_loads(real)
    assert not any(p.get("command") == "project_file" for p in reports.prints())


async def test_deltas_carry_only_changed_fields(printer: VirtualPrinter, reports: ReportCollector) -> None:
    printer.add_file(JOB, TESTQUBE)
    await printer.start_print(JOB, ams_mapping=[3, 0, 2, 1], announce=False)
    await printer.advance(2)
    await reports.wait_for(lambda m: m.get("print", {}).get("layer_num") == 2)

    deltas = [p for p in reports.prints() if p.get("command") == "push_status"]
    assert deltas and all(p["msg"] == 1 for p in deltas)
    assert deltas[0] == {"gcode_file": "Testqube_Mulitcolor.gcode.3mf", "subtask_name": "Testqube_Mulitcolor.gcode.3mf",
                         "print_type": "local", "command": "push_status", "msg": 1,
                         "sequence_id": deltas[0]["sequence_id"]}
    assert {"gcode_state": "PREPARE"}.items() <= deltas[1].items()
    assert {"gcode_state": "RUNNING", "layer_num": 0, "mc_percent": 0, "mc_remaining_time": 19}.items() \
        <= deltas[2].items()
    assert [p["layer_num"] for p in deltas if "layer_num" in p] == [0, 1, 2]
    # P1/A1 deltas never carry total_layer_num, nor fields that did not change.
    assert not any("total_layer_num" in p for p in deltas)
    assert not any("nozzle_diameter" in p or "vt_tray" in p for p in deltas)
    ams_deltas = [p["ams"] for p in deltas if "ams" in p]
    assert ams_deltas and all("ams" not in a for a in ams_deltas)
    assert all(set(a) <= {"tray_now", "tray_tar", "tray_pre", "version"} for a in ams_deltas)


async def test_pushall_during_print_gives_merged_full_state(printer: VirtualPrinter,
                                                            reports: ReportCollector) -> None:
    printer.add_file(JOB, TESTQUBE)
    await printer.start_print(JOB, ams_mapping=[3, 0, 2, 1], announce=False)
    await printer.goto_layer(9)
    await reports.request(printer.serial, {"pushing": {"command": "pushall"}})

    full = (await reports.wait_for(lambda m: m.get("print", {}).get("msg") == 0))["print"]
    assert full["gcode_state"] == "RUNNING"
    assert full["layer_num"] == 9
    assert full["total_layer_num"] == 50
    assert full["ams"]["tray_now"] == "0"
    assert full["subtask_name"] == "Testqube_Mulitcolor.gcode.3mf"
    assert full == {**printer.state["print"], "command": "push_status", "msg": 0,
                    "sequence_id": full["sequence_id"]}


async def test_progress_within_layer_moves_to_the_next_m73_mark(printer: VirtualPrinter,
                                                                 reports: ReportCollector) -> None:
    printer.add_file(JOB, TESTQUBE)
    await printer.start_print(JOB, ams_mapping=[3, 0, 2, 1], announce=False)
    await printer.goto_layer(8)
    before = printer.state["print"]["mc_percent"]
    await printer.progress_within_layer(1.0)

    # Layer 8 of this file changes to filament 1 (tray 0) and reaches M73 P47.
    assert printer.state["print"]["ams"]["tray_now"] == "0"
    assert printer.state["print"]["mc_percent"] == 47 > before
    assert printer.state["print"]["layer_num"] == 8


async def test_cloud_print_announces_project_file_first(printer: VirtualPrinter,
                                                        reports: ReportCollector) -> None:
    printer.add_file(JOB, TESTQUBE)
    await printer.start_print(JOB, plate=1, ams_mapping=[3, 0, 2, 1], subtask_name="Testqube_Mulitcolor",
                              url="https://example.invalid/model.3mf", task_id="627521184")
    await reports.wait_for(lambda m: m.get("print", {}).get("gcode_state") == "RUNNING")

    prints = reports.prints()
    echo = prints[0]
    assert echo["command"] == "project_file"
    assert echo["param"] == "Metadata/plate_1.gcode"
    assert echo["url"] == "https://example.invalid/model.3mf"
    assert echo["subtask_name"] == "Testqube_Mulitcolor"
    assert echo["use_ams"] is True
    assert echo["ams_mapping"] == [3, 0, 2, 1]
    assert echo["ams_mapping2"][0] == {"ams_id": 0, "slot_id": 3}
    assert {"print_type": "cloud", "task_id": "627521184", "subtask_name": "Testqube_Mulitcolor"}.items() \
        <= prints[1].items()


async def test_project_file_request_starts_the_job_and_is_echoed(printer: VirtualPrinter,
                                                                 reports: ReportCollector) -> None:
    printer.add_file(JOB, TESTQUBE)
    command = {"print": {"sequence_id": "0", "command": "project_file", "param": "Metadata/plate_1.gcode",
                         "url": f"file:///sdcard{JOB}", "subtask_name": "Testqube", "use_ams": True,
                         "ams_mapping": [3, 0, 2, 1], "timelapse": False}}
    await reports.request(printer.serial, command)

    echo = await reports.wait_for(lambda m: m.get("print", {}).get("command") == "project_file")
    assert echo["print"]["result"] == "success"
    assert echo["print"]["url"] == f"file:///sdcard{JOB}"
    await reports.wait_for(lambda m: m.get("print", {}).get("gcode_state") == "RUNNING")
    assert printer.state["print"]["subtask_name"] == "Testqube"

    await reports.request(printer.serial, {"print": {"sequence_id": "1", "command": "pause"}})
    await reports.wait_for(lambda m: m.get("print", {}).get("gcode_state") == "PAUSE")
    await reports.request(printer.serial, {"print": {"sequence_id": "2", "command": "resume"}})
    await reports.wait_for(lambda m: m.get("print", {}).get("gcode_state") == "RUNNING"
                           and m["print"].get("mc_print_stage") == "2" and "msg" in m["print"]
                           and m["print"]["sequence_id"] != "0" and printer.state["print"]["gcode_state"] == "RUNNING")
    await reports.request(printer.serial, {"print": {"sequence_id": "3", "command": "stop"}})
    failed = await reports.wait_for(lambda m: m.get("print", {}).get("gcode_state") == "FAILED")
    assert failed["print"]["print_error"] == 0x0300400C


async def test_project_file_for_missing_file_fails(printer: VirtualPrinter, reports: ReportCollector) -> None:
    await reports.request(printer.serial, {"print": {"command": "project_file", "param": "Metadata/plate_1.gcode",
                                                     "url": "file:///sdcard/cache/nope.gcode.3mf"}})
    echo = await reports.wait_for(lambda m: m.get("print", {}).get("command") == "project_file")
    assert echo["print"]["result"] == "fail"
    assert printer.state["print"]["gcode_state"] == "IDLE"


async def test_x1_sends_full_state_with_total_layers_and_mapping(cert_dir: Path) -> None:
    async with VirtualPrinter(model="X1C", ams=[AmsUnit(0), AmsUnit(1)], cert_dir=cert_dir) as printer, \
            subscribed(printer) as reports:
        printer.add_file(JOB, TESTQUBE)
        await printer.start_print(JOB, ams_mapping=[3, 4, 2, 1], announce=False)
        await printer.advance(1)
        await reports.wait_for(lambda m: m.get("print", {}).get("layer_num") == 1)

    statuses = [p for p in reports.prints() if p.get("command") == "push_status"]
    assert all(p["msg"] == 0 and "total_layer_num" in p and "vt_tray" in p for p in statuses)
    assert statuses[-1]["mapping"] == [3, 0x100, 2, 1]
    assert statuses[-1]["gcode_file"] == "/data/Metadata/plate_1.gcode"


async def test_several_ams_units_ams_ht_and_external_spool(cert_dir: Path) -> None:
    units = [
        AmsUnit(0, trays=[Tray(0, type="PLA", color="FF0000FF", tray_uuid="A" * 32, tag_uid="B" * 16,
                               remain=80, weight_g=1000), Tray(1), Tray(2, empty=True), Tray(3)]),
        AmsUnit(1, kind="ams_2_pro"),
        AmsUnit(128, kind="ams_ht", humidity=3, temp=45.0),
    ]
    external = Tray(254, type="PETG", color="00FF00FF")
    async with VirtualPrinter(model="P1S", ams=units, external=external, cert_dir=cert_dir) as printer, \
            subscribed(printer) as reports:
        printer.add_file(JOB, TESTQUBE)
        await reports.request(printer.serial, {"pushing": {"command": "pushall"}})
        full = (await reports.wait_for(lambda m: m.get("print", {}).get("msg") == 0))["print"]
        await printer.start_print(JOB, ams_mapping=[254, 128, 5, 0], announce=False)
        await printer.advance(1)

    ams = full["ams"]
    assert [unit["id"] for unit in ams["ams"]] == ["0", "1", "128"]
    assert ams["ams_exist_bits"] == "13"  # bits 0, 1 and 4 (AMS HT 128 -> bit 4)
    assert ams["tray_exist_bits"] == "100fb"  # AMS 0 slot 2 empty; AMS HT 128 -> bit 16
    first = ams["ams"][0]["tray"][0]
    assert {"tray_type": "PLA", "tray_color": "FF0000FF", "tray_uuid": "A" * 32, "tag_uid": "B" * 16,
            "remain": 80, "tray_weight": "1000"}.items() <= first.items()
    assert ams["ams"][0]["tray"][2] == {"id": "2"}
    assert len(ams["ams"][2]["tray"]) == 1 and ams["ams"][2]["humidity"] == "3"
    assert full["vt_tray"]["tray_type"] == "PETG"
    # Filament 0 is mapped to the external spool.
    assert printer.state["print"]["ams"]["tray_now"] == "254"


async def test_rfid_tag_change_is_reported(printer: VirtualPrinter, reports: ReportCollector) -> None:
    await printer.push_tray_change(0, 1, tag_uid="1122334455667788", tray_uuid="C" * 32, remain=50)

    delta = (await reports.wait_for(lambda m: "ams" in m.get("print", {})))["print"]
    tray = delta["ams"]["ams"][0]["tray"][1]
    assert (tray["tag_uid"], tray["tray_uuid"], tray["remain"]) == ("1122334455667788", "C" * 32, 50)
    assert delta["msg"] == 1


async def test_full_state_keys_follow_real_captures(printer: VirtualPrinter) -> None:
    real = json.loads((MQTT / "push_status_full_A1_IDLE_amslite_vt_tray254.json").read_text())["print"]
    ours = printer.state["print"]
    assert set(ours) <= set(real) | {"mapping", "vir_slot"}
    assert set(ours["ams"]) <= set(real["ams"])
    assert set(ours["ams"]["ams"][0]) <= set(real["ams"]["ams"][0])
    assert set(ours["ams"]["ams"][0]["tray"][0]) <= set(real["ams"]["ams"][0]["tray"][0])
    assert set(ours["vt_tray"]) <= set(real["vt_tray"]) | {"ctype", "cols"}


async def test_recorded_state_is_the_starting_point(printer: VirtualPrinter, reports: ReportCollector) -> None:
    recorded = json.loads((MQTT / "push_status_full_P1P_msg0_FAILED_amsstatus_vt_tray.json").read_text())
    printer.load_state(recorded)
    await reports.request(printer.serial, {"pushing": {"command": "pushall"}})
    full = (await reports.wait_for(lambda m: m.get("print", {}).get("msg") == 0))["print"]
    assert full["gcode_state"] == "FAILED"
    assert full["subtask_name"] == recorded["print"]["subtask_name"]
    assert full["ams"]["ams"][0]["tray"] == recorded["print"]["ams"]["ams"][0]["tray"]

    printer.add_file(JOB, TESTQUBE)
    await printer.start_print(JOB, ams_mapping=[0, 1, 2, 3], announce=False)
    running = await reports.wait_for(lambda m: m.get("print", {}).get("gcode_state") == "RUNNING")
    assert running["print"]["msg"] == 1


async def test_project_file_request_runs_paced_and_busy_printer_refuses_another(
        printer: VirtualPrinter, reports: ReportCollector) -> None:
    printer.add_file(JOB, TESTQUBE)
    printer.auto_layer_seconds = 0.002
    command = {"print": {"command": "project_file", "param": "Metadata/plate_1.gcode",
                         "url": f"file:///sdcard{JOB}", "use_ams": True, "ams_mapping": [3, 0, 2, 1]}}
    await reports.request(printer.serial, command)
    await reports.wait_for(lambda m: m.get("print", {}).get("layer_num") == 1)
    await printer.pause()
    await reports.request(printer.serial, command)

    await reports.wait_for(lambda m: m.get("print", {}).get("result") == "fail")
    echoes = [x for x in reports.prints() if x.get("command") == "project_file"]
    assert [e["result"] for e in echoes] == ["success", "fail"]
    assert echoes[1]["reason"] == "printer is busy"

    await printer.resume()
    finished = await reports.wait_for(lambda m: m.get("print", {}).get("gcode_state") == "FINISH", 30)
    assert finished["print"]["mc_percent"] == 100


async def test_project_file_without_ams_prints_from_the_external_spool(printer: VirtualPrinter,
                                                                       reports: ReportCollector) -> None:
    printer.add_file(JOB, TESTQUBE)
    await reports.request(printer.serial, {"print": {"command": "project_file", "param": "Metadata/plate_1.gcode",
                                                     "url": f"ftp://{JOB}", "use_ams": False}})
    await reports.wait_for(lambda m: m.get("print", {}).get("gcode_state") == "RUNNING")
    await printer.advance(1)
    assert printer.state["print"]["ams"]["tray_now"] == "254"


async def test_a_late_mapping_is_stated_only_at_its_layer(printer: VirtualPrinter, reports: ReportCollector) -> None:
    """A printer that states its slot mapping late (issue 9, item 1): `mapping: []` at the start, the
    job's codes with layer 3, on a P1S LAN print too (whose firmware never states it otherwise)."""
    printer.add_file(JOB, TESTQUBE)
    await printer.start_print(JOB, ams_mapping=[3, 0, 2, 1], announce=False, state_mapping_at=3)
    await printer.advance(4)
    await reports.wait_for(lambda m: m.get("print", {}).get("layer_num") == 4)

    stated = [(p.get("layer_num"), p["mapping"]) for p in reports.prints() if "mapping" in p]
    assert stated == [(0, []), (3, [3, 0, 2, 1])]  # AMS 0: the code is the slot
    assert printer.state["print"]["mapping"] == [3, 0, 2, 1]


async def test_a_second_late_mapping_is_news_again(cert_dir: Path) -> None:
    """The next job clears the last one's mapping, so the same mapping stated late is reported again."""

    def changes(reports: ReportCollector) -> list[list[int]]:
        # The X1C reports its full state every time: what counts is each change of `mapping`.
        seen: list[list[int]] = []
        for report in reports.prints():
            if "mapping" in report and (not seen or report["mapping"] != seen[-1]):
                seen.append(report["mapping"])
        return seen

    async with VirtualPrinter(model="X1C", cert_dir=cert_dir) as printer, subscribed(printer) as reports:
        printer.add_file(JOB, TESTQUBE)
        for _ in range(2):
            await printer.start_print(JOB, ams_mapping=[4, 1, 2, 3], announce=False, state_mapping_at=1)
            await printer.finish()
        await reports.wait_for(lambda _: len(changes(reports)) >= 4)
    assert changes(reports) == [[], [256, 1, 2, 3]] * 2  # tray 4 is AMS 1 slot 0
