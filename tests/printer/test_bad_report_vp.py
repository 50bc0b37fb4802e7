"""Issue 9, item 9 end to end: bad reports mid-print over the real TLS link, with a whole Layerwise.

The virtual printer's broker publishes the malformed report from the issue, a report nested too deep and
one too large, in the middle of a print. The printer stays online, the dashboard and ``/api/v1/printers``
answer 200 and show the problem, and every layer is still billed: Spoolman gets what the analysis says.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from server.analysis import analyze_file
from server.sim.demo_print import demo_3mf
from tests.app.conftest import PRINTER, Stack, make_stack

ITEM_9 = {"print": {"command": "push_status", "msg": 1, "ams": {"ams": [{"id": "0", "tray": 5}]}}}
DEEP = b'{"print":{"command":"push_status","msg":1,"ams":' + b"[" * 50_000 + b"]" * 50_000 + b"}}"
HUGE = json.dumps({"print": {"command": "push_status", "msg": 1, "junk": "x" * 2_000_000}}).encode()
SPOOL = 1


async def _publish_raw(stack: Stack, data: bytes) -> None:
    broker = stack.printer._broker  # the printer's own broker: what any client on the LAN could publish
    assert broker is not None and broker._broker is not None
    await broker._broker.internal_message_broadcast(broker.report_topic, data, qos=0)


async def _until(condition, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


async def _served(stack: Stack) -> dict:
    page = await stack.client.get("/")
    assert page.status_code == 200, page.text[:500]
    api = await stack.client.get("/api/v1/printers")
    assert api.status_code == 200, api.text[:500]
    return api.json()[0]


async def test_bad_reports_mid_print_never_stop_billing(tmp_path: Path) -> None:
    path = tmp_path / "demo.gcode.3mf"
    path.write_bytes(demo_3mf(layers=8, filaments=1))
    analysis = analyze_file(path)
    async with make_stack(tmp_path) as stack:
        await stack.wait_online()
        await stack.runtime.slots.assign(PRINTER, 0, SPOOL, move=True)
        store = stack.spoolman.store
        before = store.get_spool(SPOOL)["used_length"]
        task = stack.runtime.printers[PRINTER]
        tracker = task.jobs
        stack.printer.add_file("/cache/demo.gcode.3mf", path)
        await stack.printer.start_print("/cache/demo.gcode.3mf", ams_mapping=[0])
        await stack.printer.advance(3)
        await _until(lambda: tracker.job is not None and tracker.job.last_layer == 3, "layer 3 tracked")
        good_units = task.view().units
        assert task.last_report_error is None  # the printer's own reports are all understood

        # The report: dropped, the trays stay as they were, the problem is shown.
        await stack.printer._broker.publish(ITEM_9)  # type: ignore[union-attr]
        await _until(lambda: task.last_report_error is not None, "the malformed report noticed")
        assert "tray" in (task.last_report_error or "")
        printer = await _served(stack)
        assert printer["online"] and printer["report_error"] == task.last_report_error
        assert task.view().units == good_units
        page = await stack.client.get("/")
        assert "data-report-error" in page.text

        await stack.printer.advance(1)
        await _until(lambda: tracker.job is not None and tracker.job.last_layer == 4, "layer 4 tracked")
        for raw, word in ((DEEP, "deeper"), (HUGE, "larger")):
            await _publish_raw(stack, raw)
            await _until(lambda word=word: word in (task.last_report_error or ""), f"report refused: {word}")
            assert (await _served(stack))["online"]

        for layer in range(5, analysis.layer_count + 1):
            await stack.printer.advance(1)
            await _until(lambda layer=layer: tracker.job is not None and tracker.job.last_layer == layer,
                         f"layer {layer} tracked")
        await stack.printer.finish()
        await _until(lambda: tracker.job is not None and not tracker.job.open, "the job finished")
        backlog = stack.runtime.outbox.backlog
        done = asyncio.Event()

        async def settled() -> None:
            while (await backlog()).backlog.count:
                await asyncio.sleep(0.05)
            done.set()

        await asyncio.wait_for(settled(), 30)
        billed = store.get_spool(SPOOL)["used_length"] - before
        expected = analysis.used_through(analysis.layer_count)[0]
        assert abs(billed - expected) < 0.01, (billed, expected)
        assert task.online and task.link_error is None
