"""The MQTT link and the probes against the virtual printer over real TLS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from printer_links import ACCESS_CODE, config_for, running_link
from pydantic import SecretStr

from server.config import PrinterConfig
from server.printer.errors import PrinterUnreachable
from server.printer.link import PrinterLink, decode_payload
from server.printer.probe import probe_ftps, probe_mqtt
from server.printer.tls import PinStore
from server.printer.trays import printer_view
from server.printer.values import OnceLog
from server.retry import Backoff
from server.sim.printer import AmsUnit, Tray, VirtualPrinter


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("printer-link-certs")


@pytest.fixture
async def vp(cert_dir: Path) -> AsyncIterator[VirtualPrinter]:
    units = [AmsUnit(0, trays=[Tray(0, type="PLA", color="FF0000FF"), Tray(1, empty=True),
                               Tray(2, type="PETG"), Tray(3, type="ABS")])]
    async with VirtualPrinter(access_code=ACCESS_CODE, model="P1S", ams=units, cert_dir=cert_dir) as printer:
        yield printer


def _fast_backoff() -> Backoff:
    return Backoff(first=0.05, cap=0.2)


def _pushalls(vp: VirtualPrinter) -> int:
    return sum(1 for r in vp.requests if r.get("pushing", {}).get("command") == "pushall")


async def test_link_logs_in_asks_version_and_full_state(vp: VirtualPrinter, tmp_path: Path) -> None:
    link = PrinterLink(config_for(vp), PinStore(tmp_path), backoff=_fast_backoff())
    async with running_link(link) as rec:
        await rec.wait_for(lambda: "gcode_state" in rec.state and any("info" in m for m in rec.messages))
        assert rec.statuses[0].state == "connecting" and rec.statuses[1].online and link.online
    commands = [next(iter(r.values()))["command"] for r in vp.requests]
    assert commands[:2] == ["get_version", "pushall"]
    view = printer_view(rec.state)
    assert [t.present for t in view.units[0].trays] == [True, False, True, True]
    assert view.units[0].trays[0].color_hex == "FF0000FF"


async def test_deltas_merge_through_the_link(vp: VirtualPrinter, tmp_path: Path) -> None:
    link = PrinterLink(config_for(vp), PinStore(tmp_path), backoff=_fast_backoff())
    async with running_link(link) as rec:
        await rec.wait_for(lambda: "ams" in rec.state)
        await vp.publish_report({"print": {"command": "push_status", "msg": 1, "sequence_id": "9",
                                           "layer_num": 7, "mc_percent": 55}})
        await rec.wait_for(lambda: rec.state.get("layer_num") == 7)
        await vp.push_tray_change(0, 3, type="PLA-CF", color="00FF00FF")
        await rec.wait_for(lambda: (printer_view(rec.state).tray(3) or object()).__dict__.get("material")
                           == "PLA-CF")
    view = printer_view(rec.state)
    assert rec.state["mc_percent"] == 55 and rec.state["gcode_state"] == "IDLE"
    assert [t.material for t in view.units[0].trays] == ["PLA", None, "PETG", "PLA-CF"]


async def test_link_reconnects_after_dropped_connections_without_flooding(vp: VirtualPrinter,
                                                                          tmp_path: Path) -> None:
    link = PrinterLink(config_for(vp), PinStore(tmp_path), backoff=_fast_backoff(), pushall_interval=3600)
    async with running_link(link) as rec:
        await rec.wait_for(lambda: "gcode_state" in rec.state)
        for round_ in range(1, 4):
            await vp.drop_connections()
            await rec.wait_for(lambda r=round_: sum(s.online for s in rec.statuses) == r + 1)
            await rec.wait_for(lambda r=round_: sum("info" in m for m in rec.messages) == r + 1)
        assert [s.state for s in rec.statuses if s.state != "connecting"] == ["online", "offline"] * 3 + ["online"]
        offline = [s for s in rec.statuses if s.state == "offline"]
        assert all(s.error == "unreachable" and s.retry_in is not None for s in offline)
        # The link flapped three times: one pushall, but get_version after every connect.
        assert _pushalls(vp) == 1
        assert sum(1 for r in vp.requests if "info" in r) == 4
        await vp.publish_report({"print": {"command": "push_status", "msg": 1, "layer_num": 3}})
        await rec.wait_for(lambda: rec.state.get("layer_num") == 3)


async def test_link_survives_broker_restart(vp: VirtualPrinter, tmp_path: Path) -> None:
    link = PrinterLink(config_for(vp), PinStore(tmp_path), backoff=_fast_backoff(), pushall_interval=0)
    async with running_link(link) as rec:
        await rec.wait_for(lambda: "gcode_state" in rec.state)
        await vp.stop_broker()
        await rec.wait_for(lambda: any(s.state == "offline" for s in rec.statuses))
        await vp.start_broker()
        await rec.wait_for(lambda: sum(s.online for s in rec.statuses) == 2)
        await rec.wait_for(lambda: _pushalls(vp) == 2)


async def test_link_reports_a_refused_access_code(vp: VirtualPrinter, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    link = PrinterLink(config_for(vp, access_code=SecretStr("87654321")), PinStore(tmp_path),
                       backoff=_fast_backoff())
    with caplog.at_level(logging.INFO, logger="server.printer.link"):
        async with running_link(link) as rec:
            await rec.wait_for(lambda: sum(s.state == "offline" for s in rec.statuses) >= 3)
    offline = next(s for s in rec.statuses if s.state == "offline")
    assert offline.error == "auth" and "access code was refused" in offline.detail
    assert "87654321" not in caplog.text and ACCESS_CODE not in caplog.text
    # The same failure again and again is one warning, then quieter lines.
    refused = [r for r in caplog.records if "access code was refused" in r.getMessage()]
    assert [r.levelname for r in refused][:3] == ["WARNING", "INFO", "INFO"]


async def test_publish_while_offline_is_a_clear_error(vp: VirtualPrinter, tmp_path: Path) -> None:
    with pytest.raises(PrinterUnreachable, match="not connected"):
        await PrinterLink(config_for(vp), PinStore(tmp_path)).publish({"print": {"command": "pause"}})


async def test_probes_good_and_bad_access_code(vp: VirtualPrinter, tmp_path: Path) -> None:
    pins = PinStore(tmp_path)
    good = await probe_mqtt(config_for(vp), pins)
    assert good.ok and "TLS verified" in good.detail
    ftps = await probe_ftps(config_for(vp), pins)
    assert ftps.ok and "entries in /" in ftps.detail
    bad = config_for(vp, access_code=SecretStr("00000000"))
    assert (await probe_mqtt(bad, pins)).detail == "access code refused"
    assert (await probe_ftps(bad, pins)).detail == "access code refused"


async def test_probes_name_the_tls_problem(vp: VirtualPrinter, tmp_path: Path) -> None:
    pins = PinStore(tmp_path)
    untrusted = await probe_mqtt(config_for(vp, ca_file=None), pins)
    assert not untrusted.ok and "certificate not trusted" in untrusted.detail
    assert "Bambu Lab's CA" in untrusted.detail
    mismatch = await probe_ftps(config_for(vp, serial="01P00A999999999"), pins)
    assert not mismatch.ok
    assert mismatch.detail.startswith(f"certificate CN is '{vp.serial}', expected the serial '01P00A999999999'")
    mqtt_mismatch = await probe_mqtt(config_for(vp, serial="01P00A999999999"), pins)
    assert "certificate CN is" in mqtt_mismatch.detail


async def test_probe_connection_refused(vp: VirtualPrinter, tmp_path: Path) -> None:
    await vp.stop_broker()
    result = await probe_mqtt(config_for(vp), PinStore(tmp_path))
    assert not result.ok and result.detail.startswith("connection refused")
    await vp.start_broker()


async def test_pin_mode_trusts_first_certificate_then_refuses_another(vp: VirtualPrinter, tmp_path: Path) -> None:
    pins = PinStore(tmp_path)
    pinned = config_for(vp, tls="pin", ca_file=None)
    assert (await probe_mqtt(pinned, pins)).ok
    assert pins.get(vp.serial) is not None
    assert (await probe_ftps(pinned, pins)).ok  # same certificate on FTPS
    # Same serial, new certificate (a printer reset, or someone else answering on that address).
    async with VirtualPrinter(serial=vp.serial, access_code=ACCESS_CODE, cert_dir=tmp_path / "other") as other:
        changed = config_for(other, tls="pin", ca_file=None)
        refused = await probe_mqtt(changed, pins)
        assert not refused.ok and "certificate changed" in refused.detail
        assert str(pins.path_for(vp.serial)) in refused.detail
        link = PrinterLink(changed, pins, backoff=_fast_backoff())
        async with running_link(link) as rec:
            await rec.wait_for(lambda: any(s.state == "offline" for s in rec.statuses))
        assert next(s for s in rec.statuses if s.state == "offline").error == "tls"
        assert other.requests == []  # nothing, not even the login, reached the wrong printer's broker


async def test_insecure_mode_connects_without_any_trust(vp: VirtualPrinter, tmp_path: Path) -> None:
    result = await probe_mqtt(config_for(vp, tls="insecure", ca_file=None, serial=vp.serial), None)
    assert result.ok and "NOT verified" in result.detail


def test_malformed_payloads_are_skipped_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    once = OnceLog("bench")
    with caplog.at_level(logging.WARNING):
        assert decode_payload(b"{not json", once) is None
        assert decode_payload(b"\xff\xfe", once) is None
        assert decode_payload(b"[1, 2]", once) is None
        assert decode_payload(b"[3]", once) is None
        assert decode_payload(b'"text"', once) is None
        assert decode_payload(b'{"print": {}}', once) == {"print": {}}
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3 and all(m.startswith("printer bench: ") for m in messages)


async def test_probe_of_a_silent_port_times_out(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts TCP, never speaks TLS
        port = silent.getsockname()[1]
        cfg = PrinterConfig(name="mute", host="127.0.0.1", serial="S", access_code=SecretStr(ACCESS_CODE),
                            mqtt_port=port, ftps_port=port)
        result = await probe_ftps(cfg, PinStore(tmp_path), timeout=0.3)
    assert not result.ok and result.detail == f"timed out reaching 127.0.0.1:{port}"


async def test_silent_printer_gets_a_pushall_then_a_fresh_connection(vp: VirtualPrinter, tmp_path: Path) -> None:
    link = PrinterLink(config_for(vp), PinStore(tmp_path), backoff=_fast_backoff(), pushall_interval=0,
                       silence_timeout=0.3)
    async with running_link(link) as rec:
        await rec.wait_for(lambda: "gcode_state" in rec.state)
        await vp.go_silent(1.5)
        await rec.wait_for(lambda: any(s.state == "offline" for s in rec.statuses))
        offline = next(s for s in rec.statuses if s.state == "offline")
        assert offline.error == "unreachable" and "no report for 0.6 s" in offline.detail
        assert _pushalls(vp) >= 2  # the one after connecting, one when the printer went quiet
        while vp.silent:
            await asyncio.sleep(0.05)
        await rec.wait_for(lambda: link.online)
        await vp.publish_report({"print": {"command": "push_status", "msg": 1, "layer_num": 11}})
        await rec.wait_for(lambda: rec.state.get("layer_num") == 11)
