"""`layerwise demo` comes up with a printer online, its AMS, seeded spools and a print running."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from server.sim.demo import DEMO_PRINTER, demo


@contextlib.asynccontextmanager
async def running_demo(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """`layerwise demo` on a free port, and a client for it; stopped on exit."""
    urls: list[str] = []
    task = asyncio.create_task(demo("127.0.0.1", 0, layer_seconds=0.2, data_dir=tmp_path / "data",
                                    on_ready=urls.append))
    try:
        async with asyncio.timeout(60):
            while not urls:
                await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=urls[0]) as client:
            yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_demo_runs_a_print_with_spools_assigned(tmp_path: Path) -> None:
    async with running_demo(tmp_path) as client, asyncio.timeout(60):
        while True:
            printers = (await client.get("/api/v1/printers")).json()
            slots = printers[0]["units"][0]["slots"] if printers[0]["units"] else []
            rfid_done = all(s["spool_id"] for s in slots[:4]) if len(slots) == 4 else False
            if printers[0]["online"] and printers[0]["job"]["state"] == "RUNNING" and rfid_done:
                break
            await asyncio.sleep(0.2)
        page = await client.get("/")
    printer = printers[0]
    assert printer["name"] == DEMO_PRINTER
    slots = printer["units"][0]["slots"]
    assert [s["spool_id"] for s in slots] == [1, 3, 4, 2]
    # The two RFID-tagged trays were matched to their spools by tag.
    assert [s["source"] for s in slots] == ["rfid", "env", "env", "rfid"]
    assert printer["external"][0]["spool_id"] == 6
    # Tagged trays show how far Spoolman and the AMS's remaining estimate are apart.
    black = slots[0]
    assert black["drift_g"] is not None
    assert abs(black["drift_g"] - (black["spool"]["remaining_weight"] - black["remain_percent"] / 100 * 1000)) < 0.2
    assert slots[1]["drift_g"] is None  # no tag
    assert page.status_code == 200 and DEMO_PRINTER in page.text


async def test_slot_dialog_shows_the_drift_of_a_tagged_spool(tmp_path: Path) -> None:
    async with running_demo(tmp_path) as client, asyncio.timeout(60):
        while True:
            units = (await client.get("/api/v1/printers")).json()[0]["units"]  # [] until the first report
            slot = units[0]["slots"][0] if units else None
            if slot is not None and slot["drift_g"] is not None:
                break
            await asyncio.sleep(0.2)
        dialog = (await client.get("/printers/Demo%20X1C/slots/0/dialog")).text
    assert f"The AMS reads {slot['remain_percent']}% left on this RFID spool" in dialog
    assert f"Spoolman has {abs(slot['drift_g']):.0f} g" in dialog
