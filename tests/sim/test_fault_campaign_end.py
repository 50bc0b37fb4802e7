"""The fault campaign with a printer that refuses requests: a print's start and end must reach a client.

Such a printer gives no full state on (re)connect, so a start or a FINISH published while no client is
subscribed is seen by no one: a limit of those modes (README), not a fault to measure. A kill is not the
only way to be away: after a broker outage or a dropped connection the client is gone until its reconnect
(seconds of backoff), which is how ``bench.faults --seed 1 --run 13 --printer-mode cloud`` lost layers
9-40: the 1.7 s print ended before Layerwise was back. Runs 14 and 20 lost layers to a kill around the
start, and to a kill between the wait for a subscriber and the cancel.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from printer_clients import ACCESS_CODE, subscribed

from bench.faults.harness import Rig
from bench.faults.run import Plan, PrintFile, drive_print
from server.analysis import PrintAnalysis
from server.sim.demo_print import demo_3mf
from server.sim.printer import VirtualPrinter

LAYERS = 5
FILE = PrintFile("demo.gcode.3mf", cast(PrintAnalysis, SimpleNamespace(layer_count=LAYERS)), [0, 1, 2, 3])


def _bench(printer: VirtualPrinter) -> Rig:
    """A rig with only the printer: drive_print needs nothing else."""
    return Rig(printer=printer, spoolman=cast(Any, None), store=cast(Any, None), layerwise=cast(Any, None),
               spool_for_tray={}, client=cast(Any, None))


def _finished(message: dict[str, Any]) -> bool:
    return message.get("print", {}).get("gcode_state") == "FINISH"


def _started(message: dict[str, Any]) -> bool:
    return message.get("print", {}).get("gcode_state") == "PREPARE"


async def test_a_refusing_printers_print_starts_and_ends_only_while_a_client_is_subscribed(cert_dir: Path) -> None:
    async with VirtualPrinter(access_code=ACCESS_CODE, cert_dir=cert_dir, mode="cloud") as printer:
        printer.add_file(FILE.remote_path, demo_3mf(layers=LAYERS))
        # No client subscribed, as while Layerwise's link waits out its backoff after a broker outage.
        await printer.stop_broker()
        await printer.start_broker()
        assert printer.report_subscribers() == []
        bench = _bench(printer)
        driving = asyncio.create_task(drive_print(bench, Plan(13, FILE, None, ()), layer_seconds=0.02))
        async with subscribed(printer) as first:
            await first.wait_for(_started)  # the start waited for this client
            async with asyncio.timeout(10):
                while printer.layer < 1:
                    await asyncio.sleep(0.01)
            await printer.drop_connections()  # away again, before the end
        async with asyncio.timeout(10):
            while printer.layer < LAYERS:
                await asyncio.sleep(0.01)
        async with subscribed(printer) as back:
            await back.wait_for(_finished)
            await asyncio.wait_for(driving, 10)
        assert printer.state["print"]["gcode_state"] == "FINISH"


async def test_no_kill_or_outage_starts_between_the_wait_for_a_client_and_the_end(cert_dir: Path) -> None:
    async with VirtualPrinter(access_code=ACCESS_CODE, cert_dir=cert_dir, mode="cloud") as printer:
        bench = _bench(printer)
        async with subscribed(printer):
            async with bench.watched_end():
                # A kill fault takes the same lock the print's end holds: it waits until the end is done.
                assert bench.outages["kill"].locked() and bench.outages["broker"].locked()
            assert not bench.outages["kill"].locked()


async def test_dropped_clients_are_no_subscribers_once_the_drop_returns(cert_dir: Path) -> None:
    # The subscription needs the printer, so the two cannot share one `async with`.
    async with VirtualPrinter(access_code=ACCESS_CODE, cert_dir=cert_dir, mode="cloud") as printer:  # noqa: SIM117
        async with subscribed(printer):
            assert len(printer.report_subscribers()) == 1
            await printer.drop_connections()
            assert printer.report_subscribers() == []
