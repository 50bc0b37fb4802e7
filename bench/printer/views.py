"""Tray views built per printer report, one command: ``python -m bench.printer.views``.

The recorded A1 print is replayed report by report through the printer task as the runtime wires it
(``server.runtime.printer_task``: the task, its job tracker on a SQLite file in a temporary folder),
and every ``printer_view`` build is counted (the tray model is the costly part of reading a report),
with one dashboard open: after each report the printer card is drawn again (``server.web.views.printer_out``
reads ``PrinterTask.view()``), as the page's event stream makes it. Parsing once at the edge (issue 11)
means one per report.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from server.config import PrinterConfig
from server.db import open_database
from server.events import EventBus
from server.printer import trays
from server.runtime import printer_task

SEQUENCE = (Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mqtt-captures" / "sequences"
            / "a1-fw01.07-Testqube_Multicolor_cloud.log")


def _counting(counter: list[int], real: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        counter[0] += 1
        return real(*args, **kwargs)
    return counted


async def views_per_report(page: bool) -> tuple[int, int]:
    """(reports replayed, tray views built while handling them); ``page``: with one dashboard open."""
    messages = [json.loads(line.partition(" :: ")[2]) for line in SEQUENCE.read_text("utf-8").splitlines()]
    counter = [0]
    real = trays.active_tray_raw  # called once by every printer_view, whoever imported it
    with tempfile.TemporaryDirectory() as tmp:
        # Port 9 on this machine: the job file fetch fails fast (not counted: it builds no view).
        config = PrinterConfig(name="bench", host="127.0.0.1", serial="00M00A000000000",
                               access_code=SecretStr("12345678"), mqtt_port=9, ftps_port=9, model="A1")
        task = printer_task(config, db=open_database(Path(tmp)), bus=EventBus(), data_dir=Path(tmp))
        trays.active_tray_raw = _counting(counter, real)  # type: ignore[assignment]
        reports = 0
        try:
            for message in messages:
                if isinstance(message.get("print"), dict):
                    reports += 1
                await task._on_message(message)
                if page:
                    task.view()  # the open dashboard's printer card, drawn again on the report's event
        finally:
            trays.active_tray_raw = real  # type: ignore[assignment]
            await task.jobs.close()
    return reports, counter[0]


def main() -> int:
    for page, label in ((False, "no page open"), (True, "one dashboard open")):
        reports, views = asyncio.run(views_per_report(page))
        print(f"tray views per report, {label}: {views / reports:.2f} ({views} views for {reports} reports)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
