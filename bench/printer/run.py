"""Figures for the printer adapters, one command: ``python -m bench.printer``.

* merge + tray model: reports of the recorded A1 print merged one by one and a ``PrinterView`` built after
  each (what the runtime does per report), in reports per second;
* FTPS: a 20 MB job file downloaded from the virtual printer over implicit TLS with session reuse;
* MQTT: time from a report published by the virtual printer to its delivery by ``PrinterLink``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from server.config import PrinterConfig
from server.printer.ftps import download
from server.printer.link import LinkStatus, PrinterLink
from server.printer.state import merge_report
from server.printer.tls import PinStore
from server.printer.trays import printer_view
from server.retry import Backoff
from server.sim.printer import VirtualPrinter

SEQUENCE = (Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mqtt-captures" / "sequences"
            / "a1-fw01.07-Testqube_Multicolor_cloud.log")
CODE = "12345678"


def bench_merge(rounds: int = 20) -> str:
    reports = [json.loads(line.partition(" :: ")[2]) for line in SEQUENCE.read_text("utf-8").splitlines()]
    reports = [r for r in reports if r.get("print", {}).get("command") == "push_status"]
    started = time.perf_counter()
    for _ in range(rounds):
        state: dict[str, Any] = {}
        for report in reports:
            state = merge_report(state, report)
            printer_view(state)
    seconds = time.perf_counter() - started
    count = rounds * len(reports)
    return f"merge+view: {count / seconds:,.0f} reports/s ({seconds / count * 1e6:.0f} µs per report)"


def _config(vp: VirtualPrinter) -> PrinterConfig:
    return PrinterConfig(name="bench", host=vp.host, serial=vp.serial, access_code=SecretStr(CODE),
                         mqtt_port=vp.mqtt_port, ftps_port=vp.ftps_port, ca_file=vp.ca_cert_path)


async def bench_ftps(vp: VirtualPrinter, size: int = 20 * 1024 * 1024) -> str:
    vp.add_file("/cache/big.gcode.3mf", os.urandom(size))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        await download(_config(vp), "/cache/big.gcode.3mf", Path(tmp) / "big", pins=PinStore(Path(tmp)))
        seconds = time.perf_counter() - started
    return f"FTPS download: {size / seconds / 1e6:.1f} MB/s ({size / 1e6:.0f} MB in {seconds:.2f} s, incl. login)"


async def bench_mqtt(vp: VirtualPrinter, count: int = 200) -> str:
    arrived: asyncio.Queue[float] = asyncio.Queue()
    online = asyncio.Event()

    async def on_message(payload: dict[str, Any]) -> None:
        sent = payload.get("print", {}).get("bench_sent")
        if sent is not None:
            arrived.put_nowait(time.perf_counter() - sent)

    async def on_status(status: LinkStatus) -> None:
        if status.online:
            online.set()

    link = PrinterLink(_config(vp), PinStore(Path(tempfile.mkdtemp())), backoff=Backoff(0.05, 0.5))
    task = asyncio.create_task(link.run(on_message, on_status))
    await online.wait()
    await asyncio.sleep(0.5)
    latencies = []
    for _ in range(count):
        await vp.publish_report({"print": {"command": "push_status", "msg": 1, "bench_sent": time.perf_counter()}})
        latencies.append(await asyncio.wait_for(arrived.get(), 5))
    task.cancel()
    latencies.sort()
    return (f"MQTT report delivery: median {statistics.median(latencies) * 1e3:.2f} ms, "
            f"p95 {latencies[int(len(latencies) * 0.95)] * 1e3:.2f} ms over {count} reports")


async def _network() -> list[str]:
    async with VirtualPrinter(access_code=CODE, model="P1S") as vp:
        return [await bench_ftps(vp), await bench_mqtt(vp)]


def main() -> int:
    print(bench_merge())
    for line in asyncio.run(_network()):
        print(line)
    return 0
