"""Figures for the printer adapters, one command: ``python -m bench.printer``.

* cleaning: CPU per report for an X1's full reports replayed (temperatures changing each report, the layer
  every fifth, a tray every twentieth), cleaned with ``clean_report`` and with a ``CleanMemo``, then merged
  and compared as ``PrinterTask`` does;
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
from server.printer.snapshot import same_state
from server.printer.state import CleanMemo, clean_report, merge_clean, merge_report
from server.printer.tls import PinStore
from server.printer.trays import printer_view
from server.retry import Backoff
from server.sim.printer import VirtualPrinter

SEQUENCE = (Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mqtt-captures" / "sequences"
            / "a1-fw01.07-Testqube_Multicolor_cloud.log")
X1_FULL = SEQUENCE.parents[1] / "push_status_full_X1C_3xAMS_1xAMSHT_rfid_FINISH.json"
CODE = "12345678"


def x1_stream(count: int = 200) -> list[dict[str, Any]]:
    """``count`` full X1 reports as decoded from the wire, each a new object: temperatures and fans change
    every time (not read), the layer every fifth report, a tray's remain every twentieth."""
    base = json.loads(X1_FULL.read_text("utf-8"))["print"]
    texts = []
    for i in range(count):
        body = json.loads(json.dumps(base))
        body.update(sequence_id=str(1000 + i), nozzle_temper=220.0 + i % 7 / 10, bed_temper=60.0 - i % 3 / 10,
                    cooling_fan_speed=str(i % 15), wifi_signal=f"-{40 + i % 9}dBm", t_utc=1_700_000_000_000 + i)
        body["device"]["extruder"]["info"][0]["temp"] = 220 + i % 4
        body["device"]["bed"]["info"]["temp"] = 60 - i % 2
        body["layer_num"] = i // 5
        body["ams"]["ams"][0]["tray"][0]["remain"] = 93 - i // 20
        texts.append(json.dumps(body))
    return [json.loads(text) for text in texts]


def bench_clean(rounds: int = 7) -> list[str]:
    reports = x1_stream()

    def replay(memo: CleanMemo | None, merge: bool) -> float:
        state: dict[str, Any] = {}
        started = time.process_time()
        for body in reports:
            report, problems = memo.clean(body) if memo is not None else clean_report(body)
            if merge:
                merged = merge_clean(state, report, problems)
                same_state(merged, state)
                state = merged
        return (time.process_time() - started) / len(reports) * 1e6

    lines = []
    for label, merge in (("clean", False), ("clean+merge+compare", True)):
        before = statistics.median(replay(None, merge) for _ in range(rounds))
        after = statistics.median(replay(CleanMemo(), merge) for _ in range(rounds))
        lines.append(f"X1 full reports, {label}: {before:.0f} µs per report with clean_report, "
                     f"{after:.0f} µs with CleanMemo (CPU, median of {rounds} x {len(reports)})")
    return lines


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
    for line in bench_clean():
        print(line)
    print(bench_merge())
    for line in asyncio.run(_network()):
        print(line)
    return 0
