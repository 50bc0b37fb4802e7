"""The virtual printer's MQTT over TLS: login rules, pushall and get_version."""

from __future__ import annotations

import ssl

import aiomqtt
import pytest
from printer_clients import ReportCollector, mqtt_client

from server.sim.printer import VirtualPrinter


async def test_good_credentials_connect_and_pushall_returns_full_state(
        printer: VirtualPrinter, reports: ReportCollector) -> None:
    await reports.request(printer.serial, {"pushing": {"sequence_id": "0", "command": "pushall"}})

    full = await reports.wait_for(lambda m: m.get("print", {}).get("msg") == 0)
    state = full["print"]
    assert state["command"] == "push_status"
    assert state["gcode_state"] == "IDLE"
    assert state["subtask_name"] == ""
    assert [unit["id"] for unit in state["ams"]["ams"]] == ["0"]
    assert len(state["ams"]["ams"][0]["tray"]) == 4
    assert state["ams"]["tray_now"] == "255"
    assert state["vt_tray"]["id"] == "254"
    assert printer.requests == [{"pushing": {"sequence_id": "0", "command": "pushall"}}]


async def test_get_version_lists_modules(printer: VirtualPrinter, reports: ReportCollector) -> None:
    await reports.request(printer.serial, {"info": {"sequence_id": "5", "command": "get_version"}})

    answer = await reports.wait_for(lambda m: "info" in m)
    names = [module["name"] for module in answer["info"]["module"]]
    assert answer["info"]["sequence_id"] == "5"
    assert names[0] == "ota" and "ams/0" in names
    assert answer["info"]["module"][0]["sn"] == printer.serial


@pytest.mark.parametrize("username,password", [("bblp", "87654321"), ("admin", "12345678"), (None, None)])
async def test_wrong_or_missing_credentials_are_refused(
        printer: VirtualPrinter, username: str | None, password: str | None) -> None:
    client = aiomqtt.Client(printer.host, printer.mqtt_port, username=username, password=password,
                            tls_context=mqtt_context(printer))
    with pytest.raises(aiomqtt.MqttError):
        async with client:
            pass


async def test_plain_tcp_is_not_mqtt(printer: VirtualPrinter) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(printer.host, printer.mqtt_port, username="bblp", password="12345678",
                                  timeout=1):
            pass


async def test_certificate_chains_to_printer_ca_with_serial_cn(printer: VirtualPrinter) -> None:
    strict = mqtt_context(printer)
    strict.check_hostname = True
    # The printer's certificate has no subjectAltName: hostname checks fail, as with real printers...
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(printer.host, printer.mqtt_port, username="bblp", password="12345678",
                                  tls_context=strict, timeout=3):
            pass
    # ...while trusting the CA and comparing CN with the serial works.
    async with mqtt_client(printer):
        pass


def mqtt_context(printer: VirtualPrinter) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(printer.ca_cert_path))
    context.check_hostname = False
    return context
