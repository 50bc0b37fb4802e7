"""A real 4-colour print billed to spools of four materials: PETG, ABS, TPU and a 2.85 mm filament.

Spoolman weighs each ``use`` with the spool's own filament; Layerwise must bill the millimetres the
reference calculator says, and when an answer is lost it must recognise the weight Spoolman added (the
spool's filament, not PLA's), so nothing is left "doubtful" and nothing is billed twice.
"""

from __future__ import annotations

import math

import pytest
from e2e_stack import XMAS, XMAS_MAPPING, StackFactory, analysis_of, mapping_of, per_tray, until

from bench.faults.proxy import ProxyFault

pytestmark = pytest.mark.slow

MATERIALS = {0: ("PETG", 1.27, 1.75), 1: ("ABS", 1.04, 1.75), 2: ("TPU", 1.21, 1.75), 3: ("PLA 2.85", 1.24, 2.85)}


def by_hand(mm: float, density: float, diameter: float) -> float:
    return mm * math.pi * (diameter / 2) ** 2 / 1000 * density


async def test_four_materials_with_lost_answers(make_stack: StackFactory) -> None:
    reference = analysis_of(XMAS)
    async with make_stack(materials=MATERIALS, proxy=True, spoolman_timeout=1) as stack:
        assert stack.proxy is not None
        await stack.start("p0", XMAS, XMAS_MAPPING)
        await stack.run_to("p0", 40, step=8)
        await stack.wait_delivered()
        for _ in range(2):  # two answers lost after Spoolman applied the use
            lost = stack.proxy.arm(ProxyFault.LOST_ANSWER)
            await stack.run_to("p0", stack.rigs["p0"].printer.layer + 20, step=20)
            await until(lost.done, "the armed answer lost")
            await stack.wait_delivered()  # settled as applied after the grace: none doubtful
        await stack.complete("p0", step=64, expected_per_tray=per_tray(reference.totals(), mapping_of(XMAS_MAPPING)))
        assert len(stack.proxy.fired) == 2
        for tray, (material, density, diameter) in MATERIALS.items():
            spool = stack.rigs["p0"].spools[tray]
            mm = stack.used_length(spool)
            assert mm > 0, material
            assert stack.used_weight(spool) == pytest.approx(by_hand(mm, density, diameter), rel=1e-9), material
