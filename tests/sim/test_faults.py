"""Faults of the virtual printer: failed/cancelled/paused jobs, silence, dropped connections, broker down, reboot."""

from __future__ import annotations

import asyncio
import ftplib
import json
from collections.abc import Callable
from typing import Any

import aiomqtt
import pytest
from printer_clients import FIXTURES, ReportCollector, ftps_login, mqtt_client, subscribed

from server.sim.printer import VirtualPrinter
from server.sim.printer.printer import CANCELLED_PRINT_ERROR, FAILED_PRINT_ERROR

TESTQUBE = FIXTURES / "mqtt" / "testqube-a1-4colour-bs2.04.gcode.3mf"
JOB = "/cache/cube.gcode.3mf"


def _state(message: dict[str, Any], value: str) -> bool:
    return message.get("print", {}).get("gcode_state") == value


async def _wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_fail_at_layer(printer: VirtualPrinter, reports: ReportCollector) -> None:
    printer.add_file(JOB, TESTQUBE)
    await printer.run_print(JOB, layer_seconds=0, fail_at=3, ams_mapping=[3, 0, 2, 1])

    failed = (await reports.wait_for(lambda m: _state(m, "FAILED")))["print"]
    assert failed["print_error"] == FAILED_PRINT_ERROR
    assert printer.state["print"]["layer_num"] == 3
    assert printer.state["print"]["subtask_name"] == "cube"


async def test_cancel_at_layer_reports_failed_with_cancel_code(printer: VirtualPrinter,
                                                               reports: ReportCollector) -> None:
    printer.add_file(JOB, TESTQUBE)
    await printer.run_print(JOB, layer_seconds=0, cancel_at=5, ams_mapping=[3, 0, 2, 1])

    failed = (await reports.wait_for(lambda m: _state(m, "FAILED")))["print"]
    assert failed["print_error"] == CANCELLED_PRINT_ERROR == 0x0300400C
    assert printer.state["print"]["layer_num"] == 5
    # Like the firmware, the cancel code is cleared afterwards while the job stays FAILED.
    cleared = (await reports.wait_for(lambda m: m.get("print", {}).get("print_error") == 0))["print"]
    assert "gcode_state" not in cleared and printer.state["print"]["gcode_state"] == "FAILED"


async def test_pause_and_resume_a_paced_print(printer: VirtualPrinter, reports: ReportCollector) -> None:
    printer.add_file(JOB, TESTQUBE)
    run = asyncio.create_task(printer.run_print(JOB, layer_seconds=0.001, ams_mapping=[3, 0, 2, 1]))
    await reports.wait_for(lambda m: m.get("print", {}).get("layer_num") == 2)
    await printer.pause()
    paused = (await reports.wait_for(lambda m: _state(m, "PAUSE")))["print"]
    assert paused["mc_print_stage"] == "3"
    await printer.resume()
    await asyncio.wait_for(run, 30)
    finished = (await reports.wait_for(lambda m: _state(m, "FINISH")))["print"]
    assert finished["mc_percent"] == 100
    assert printer.state["print"]["layer_num"] == 50


async def test_silent_printer_publishes_nothing_and_loses_changes(printer: VirtualPrinter,
                                                                  reports: ReportCollector) -> None:
    printer.add_file(JOB, TESTQUBE)
    await printer.start_print(JOB, ams_mapping=[3, 0, 2, 1], announce=False)
    await reports.wait_for(lambda m: _state(m, "RUNNING"))
    published = len(printer.reports)

    await printer.go_silent(3600)
    await printer.advance(3)
    await reports.request(printer.serial, {"pushing": {"command": "pushall"}})
    await _wait_until(lambda: len(printer.requests) == 1)
    assert len(printer.reports) == published

    await printer.go_silent(0)
    await printer.advance(1)
    delta = (await reports.wait_for(lambda m: m.get("print", {}).get("layer_num") == 4))["print"]
    assert delta["msg"] == 1
    assert not any(m.get("print", {}).get("layer_num") in (1, 2, 3) for m in reports.messages)


async def test_dropped_connections_let_clients_reconnect(printer: VirtualPrinter) -> None:
    async with subscribed(printer) as first:
        await printer.drop_connections()
        assert isinstance(await first.wait_disconnected(), aiomqtt.MqttError)
    async with subscribed(printer) as again:
        await again.request(printer.serial, {"pushing": {"command": "pushall"}})
        await again.wait_for(lambda m: m.get("print", {}).get("msg") == 0)


async def test_broker_down_then_up_on_the_same_port(printer: VirtualPrinter) -> None:
    port = printer.mqtt_port
    async with subscribed(printer) as connected:
        await printer.stop_broker()
        assert isinstance(await connected.wait_disconnected(), aiomqtt.MqttError)
    with pytest.raises(aiomqtt.MqttError):
        async with mqtt_client(printer, timeout=2):
            pass
    await printer.start_broker()
    assert printer.mqtt_port == port
    async with subscribed(printer) as reports:
        await reports.request(printer.serial, {"pushing": {"command": "pushall"}})
        await reports.wait_for(lambda m: m.get("print", {}).get("msg") == 0)


async def test_reboot_clears_the_job_and_comes_back(printer: VirtualPrinter) -> None:
    printer.add_file(JOB, TESTQUBE)
    await printer.start_print(JOB, ams_mapping=[3, 0, 2, 1], announce=False)
    await printer.advance(4)
    ports = (printer.mqtt_port, printer.ftps_port)

    async with subscribed(printer) as connected:
        await printer.reboot()
        assert isinstance(await connected.wait_disconnected(), aiomqtt.MqttError)

    assert (printer.mqtt_port, printer.ftps_port) == ports
    async with subscribed(printer) as reports:
        await reports.request(printer.serial, {"pushing": {"command": "pushall"}})
        full = (await reports.wait_for(lambda m: m.get("print", {}).get("msg") == 0))["print"]
    assert full["gcode_state"] == "IDLE"
    assert full["subtask_name"] == ""
    assert full["layer_num"] == 0
    names = await asyncio.to_thread(lambda: ftps_login(printer).nlst("/cache"))
    assert "cube.gcode.3mf" in names


async def test_publish_report_replays_a_real_message(printer: VirtualPrinter, reports: ReportCollector) -> None:
    line = (FIXTURES / "mqtt" / "a1-fw01.07-Testqube_Multicolor_local.log").read_text().splitlines()[3]
    payload = json.loads(line.partition(" :: ")[2])
    await printer.publish_report(payload)

    assert await reports.wait_for(lambda m: m == payload) == payload
    for key, value in payload["print"].items():
        if key not in ("msg", "ams", "upgrade_state"):
            assert printer.state["print"][key] == value


async def test_dropped_connections_include_ftps(printer: VirtualPrinter) -> None:
    printer.add_file(JOB, b"job")
    ftp = await asyncio.to_thread(ftps_login, printer)
    await printer.drop_connections()
    with pytest.raises((OSError, EOFError, ftplib.Error)):
        await asyncio.to_thread(ftp.nlst, "/cache")
    again = await asyncio.to_thread(ftps_login, printer)
    assert await asyncio.to_thread(again.nlst, "/cache") == ["cube.gcode.3mf"]
    await asyncio.to_thread(again.quit)


async def test_reboot_during_a_paced_print_ends_it(printer: VirtualPrinter) -> None:
    printer.add_file(JOB, TESTQUBE)
    run = asyncio.create_task(printer.run_print(JOB, layer_seconds=0.002, ams_mapping=[3, 0, 2, 1]))
    await _wait_until(lambda: printer.layer >= 2)
    await printer.reboot()
    await asyncio.wait_for(run, 10)
    assert printer.state["print"]["gcode_state"] == "IDLE"
    assert not printer.printing
