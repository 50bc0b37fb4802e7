"""The runout forecast end to end: a spool with 20 g left in a tray whose part of the print needs 35 g."""

from __future__ import annotations

import re

import pytest
from e2e_stack import PRINT_FILES, XMAS, StackFactory, analysis_of, until

from server.analysis.filament import millimetres
from server.events import Event

pytestmark = pytest.mark.slow

# Filament 0 in tray 0; filaments 1, 2 and 9 all from tray 1: 8973.53 + 1460.39 + 1492.54 mm of PLA
# (1.24 g/cm³, 1.75 mm, the stack's spools) = 35.57 g.
MAPPING = [0, 1, 1, -1, -1, -1, -1, -1, -1, 1]
TRAY_1 = (1, 2, 9)


def runout_layer(left_g: float) -> int:
    """The layer during which ``left_g`` of tray 1's filaments is used up: from the analysis's figures."""
    analysis = analysis_of(XMAS)
    budget, used = millimetres(left_g, 1.75, 1.24), 0.0
    for layer in range(analysis.layer_count + 1):
        used += sum(analysis.layers[layer].get(f, 0.0) for f in TRAY_1)
        if used > budget:
            return layer
    raise AssertionError("it lasts")


async def test_the_card_shows_the_runout_layer_before_layer_1_is_billed(make_stack: StackFactory) -> None:
    expected = runout_layer(20.0)
    assert expected == 128  # by hand: 20 g = 6705.7 mm, reached during layer 128 of 192
    async with make_stack(("P1S",)) as stack:
        spool = stack.rigs["p0"].spools[1]
        stack.store.update_spool(spool, {"remaining_weight": 20.0})
        stack.runtime.spools.invalidate(spool)
        events: list[Event] = []
        async with stack.runtime.bus.subscribe() as queue:
            printer = stack.rigs["p0"].printer
            printer.add_file("/cache/xmas.gcode.3mf", PRINT_FILES / XMAS)
            await printer.start_print("/cache/xmas.gcode.3mf", ams_mapping=MAPPING)
            await stack.wait_analysed("p0")

            card = ""

            async def shows_runout() -> bool:
                nonlocal card
                card = (await stack.client.get("/printers/p0/card")).text
                return f'data-runout-layer="{expected}"' in card

            await until(shows_runout, "the card's runout warning")
            job = stack.job("p0")
            assert job is not None and job.billing.billed_through < 1  # layer 1 not billed yet
            text = re.sub(r"\s+", " ", card)
            who = f"Tray A2 (PLA White, PLA Red, PLA Green, spool #{spool})"
            assert f"{who} runs out during layer {expected} of 192" in text
            assert "35.6 g needed, 20.0 g left" in text
            while not queue.empty():
                events.append(queue.get_nowait())
        forecasts = [e for e in events if e.kind == "forecast" and e.data["trays"]]
        assert forecasts, [e.kind for e in events]
        trays = {t["tray"]: t for t in forecasts[-1].data["trays"]}
        assert trays[1] | {"runout_in_s": None} == {
            "tray": 1, "spool_id": spool, "status": "runs_out", "runout_layer": expected, "total_layers": 192,
            "runout_in_s": None, "needed_g": 35.57, "remaining_g": 20.0,
            "filament": "PLA #FFFFFF, PLA #C00D1E, PLA #00AE42",
        }
        assert trays[0]["status"] == "enough"
        # The slot dialog names the layer too, and offers a spool of the same filament that lasts.
        filament = stack.store.get_spool(spool)["filament"]["id"]
        fuller = stack.store.create_spool({"filament_id": filament, "remaining_weight": 40.0})["id"]
        stack.store.create_spool({"filament_id": filament, "remaining_weight": 30.0})  # not enough
        dialog = re.sub(r"\s+", " ", (await stack.client.get("/printers/p0/slots/1/forecast")).text)
        assert f"runs out during layer {expected} of 192" in dialog
        assert re.findall(r'data-suggested-spool="(\d+)"', dialog) == [str(fuller)]
        # So does the job page, while the job prints.
        job_id = stack.task("p0").jobs.job_id
        page = re.sub(r"\s+", " ", (await stack.client.get(f"/jobs/{job_id}")).text)
        assert f"runs out during layer {expected} of 192" in page
