"""The work each report does after a report that changed nothing: ``python -m bench.printer.unchanged``.

The recorded A1 four-colour print is replayed report by report through the printer task as the runtime
wires it (``server.runtime.printer_task``: its job tracker on a SQLite file, RFID matching against the
Spoolman stand-in over HTTP), with the job's file given from the fixtures, as a farm printer's is fetched.
Printed: the CPU time of the reports (``time.process_time`` around each report; RFID's worker is let run
between reports, off the clock), and how often the steps that reports which changed nothing may skip ran:
lifecycle events derived, tray reports observed, tray switches watched, RFID trays compared. Run it with
``PYTHONPATH`` on another checkout to get that checkout's figures (before and after a change).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from server.config import PrinterConfig, RfidConfig
from server.db import open_database
from server.events import EventBus
from server.jobs import lifecycle
from server.jobs.switches import TraySwitchTracker
from server.runtime import printer_task
from server.sim.spoolman import SpoolmanStandin, SpoolmanStore, seed_demo
from server.slots import rfid
from server.slots.rfid_service import RfidService
from server.slots.service import SlotService
from server.spoolman import SpoolmanClient
from server.spoolman.directory import SpoolDirectory

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
SEQUENCE = FIXTURES / "mqtt-captures" / "sequences" / "a1-fw01.07-Testqube_Multicolor_cloud.log"
PRINT_FILE = FIXTURES / "print-files" / "testqube-a1-4colour-bs2.04.gcode.3mf"
COUNTED = {"derive_events": (lifecycle, "derive_events"), "observe_trays": (lifecycle, "observe_trays"),
           "switches_feed": (TraySwitchTracker, "feed"), "rfid_changed_trays": (rfid, "changed_trays")}


def _counting(counts: Counter[str], name: str, real: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[name] += 1
        return real(*args, **kwargs)
    return counted


async def replay(counts: Counter[str], messages: list[dict[str, Any]]) -> float:
    """One replay of the print; the CPU seconds its reports took."""
    store = SpoolmanStore()
    seed_demo(store)
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(Path(tmp))
        bus = EventBus()
        async with SpoolmanStandin(store) as standin, SpoolmanClient(standin.url, retries=0, timeout=5) as client:
            config = PrinterConfig(name="bench", host="127.0.0.1", serial="00M00A000000000",
                                   access_code=SecretStr("12345678"), mqtt_port=9, ftps_port=9, model="A1")
            slots = SlotService(db, SpoolDirectory(client, ttl=0), bus, [config.name])
            service = RfidService(RfidConfig(), client, slots, bus, db)
            task = printer_task(config, db=db, bus=bus, data_dir=Path(tmp), rfid=service)

            async def given(*_args: Any) -> Path:
                return PRINT_FILE  # the printer's copy, as FTPS would fetch it

            task.jobs.files._fetch_file = given  # type: ignore[method-assign]
            cpu = 0.0
            try:
                for message in messages:
                    start = time.process_time()
                    await task._on_message(message)
                    cpu += time.process_time() - start
                    if task.jobs.files.running:  # the file is read beside the reports: let it finish
                        await asyncio.shield(task.jobs.files.fetch)  # type: ignore[arg-type]
                    await service.drain()
            finally:
                await task.jobs.close()
                await service.aclose()
                db.close()
    return cpu


async def measure(runs: int) -> tuple[float, Counter[str], int]:
    messages = [json.loads(line.partition(" :: ")[2]) for line in SEQUENCE.read_text("utf-8").splitlines()]
    counts: Counter[str] = Counter()
    saved = {name: getattr(owner, attr) for name, (owner, attr) in COUNTED.items()}
    for name, (owner, attr) in COUNTED.items():
        setattr(owner, attr, _counting(counts, name, saved[name]))
    try:
        cpu = sum([await replay(counts, messages) for _ in range(runs)])
    finally:
        for name, (owner, attr) in COUNTED.items():
            setattr(owner, attr, saved[name])
    return cpu, counts, runs * sum(isinstance(m.get("print"), dict) for m in messages)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="replays of the print (default 10)")
    args = parser.parse_args()
    cpu, counts, reports = asyncio.run(measure(args.runs))
    print(f"{reports} reports in {args.runs} replays: {cpu:.3f} s CPU, {cpu / reports * 1e6:.0f} us per report")
    for name in COUNTED:
        print(f"  {name}: {counts[name]} calls")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
