"""Materials other than 1.75 mm PLA: PETG, ABS, TPU and a 2.85 mm filament, through mm -> g, the billing
rules, settlement and the outbox. Every expected weight is the hand formula, never Layerwise's own
``grams``: mm * pi * (d/2)^2 / 1000 * density (mm³ / 1000 = cm³, times g/cm³)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ledger_helpers import FaultyClient, Line, assign, grams_by_hand, make_outbox, new_job
from ledger_rows import ledger_entries
from test_billing_fake_analysis import FakeAnalysis, FakeFilament

from server.analysis.filament import grams, millimetres
from server.billing import ledger
from server.billing.rules import BillingCheckpoint, bill_finish, bill_stop
from server.billing.settlement import DELIVERED, Outcome, SpoolReading, settle
from server.db import Database
from server.sim.spoolman import SpoolmanStandin, SpoolmanStore
from server.spoolman import SpoolmanClient, SpoolmanUnreachable

# name: (density g/cm³, diameter mm), typical values from the makers' data sheets
MATERIALS = {
    "PETG": (1.27, 1.75),
    "ABS": (1.04, 1.75),
    "TPU": (1.21, 1.75),
    "PLA 2.85 mm": (1.24, 2.85),
}


def by_hand(mm: float, density: float, diameter: float) -> float:
    return grams_by_hand(mm, diameter, density)


@given(
    mm=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    diameter=st.floats(min_value=0.1, max_value=5.0),
    density=st.floats(min_value=0.5, max_value=3.0),
)
def test_grams_are_the_hand_formula(mm: float, diameter: float, density: float) -> None:
    assert grams(mm, diameter, density) == pytest.approx(by_hand(mm, density, diameter), rel=1e-12, abs=1e-12)
    if abs(mm) > 1e-6:
        assert millimetres(grams(mm, diameter, density), diameter, density) == pytest.approx(mm, rel=1e-9)


@pytest.mark.parametrize("material", MATERIALS)
def test_bill_lines_weigh_what_the_files_filament_weighs(material: str) -> None:
    density, diameter = MATERIALS[material]
    analysis = FakeAnalysis({0: {0: 40.0}, 1: {0: 1000.0, 1: 250.0}, 2: {1: 80.0}},
                            marks={2: [(50, {1: 30.0})]},
                            filaments={0: FakeFilament(0, density=density, diameter=diameter),
                                       1: FakeFilament(1, density=1.24, diameter=1.75)})
    lines, _ = bill_finish(analysis, BillingCheckpoint())
    assert [(line.layer, line.filament_index, line.mm) for line in lines] == [
        (0, 0, 40.0), (1, 0, 1000.0), (1, 1, 250.0), (2, 1, 80.0)]
    for line in lines:
        want = by_hand(line.mm, density, diameter) if line.filament_index == 0 else by_hand(line.mm, 1.24, 1.75)
        assert line.grams == pytest.approx(want, rel=1e-12), line
    stopped, _ = bill_stop(analysis, BillingCheckpoint(billed_through=1), 2, 60)
    assert [(line.mm, line.estimate) for line in stopped] == [(30.0, True)]
    assert stopped[0].grams == pytest.approx(by_hand(30.0, 1.24, 1.75), rel=1e-12)


@pytest.mark.parametrize("material", MATERIALS)
def test_settlement_expects_the_spools_own_weight(material: str) -> None:
    """What Spoolman adds for a use of 2 m is the spool's filament's weight: that is applied; the same
    length weighed as PLA 1.75 mm is not what moved, so it cannot be taken as applied."""
    density, diameter = MATERIALS[material]
    expected = by_hand(2000.0, density, diameter)
    store = SpoolmanStore()
    filament = store.create_filament({"name": material, "material": material.split()[0],
                                      "density": density, "diameter": diameter})
    spool = store.create_spool({"filament_id": filament["id"]})
    before = SpoolReading(float(spool["used_weight"]), spool.get("last_used"))
    after_spool = store.use_spool(int(spool["id"]), use_length=2000.0)
    after = SpoolReading(float(after_spool["used_weight"]), after_spool.get("last_used"))
    assert after.used_weight == pytest.approx(expected, rel=1e-12)
    assert settle(before, expected, after).outcome is Outcome.APPLIED
    assert settle(before, by_hand(2000.0, 1.24, 1.75), after).outcome is Outcome.DOUBTFUL


def material_spool(store: SpoolmanStore, material: str) -> int:
    density, diameter = MATERIALS[material]
    filament = store.create_filament({"name": material, "material": material.split()[0],
                                      "density": density, "diameter": diameter, "weight": 1000.0})
    return int(store.create_spool({"filament_id": filament["id"]})["id"])


@pytest.mark.parametrize("material", MATERIALS)
async def test_the_outbox_settles_a_lost_answer_with_the_spools_filament(
    material: str, db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    """The answer to a ``use`` is lost after Spoolman applied it: the outbox reads the spool again and
    must recognise the weight it added, the spool's filament's, not PLA's, so the bill is delivered
    (once), not left "doubtful" for a person."""
    density, diameter = MATERIALS[material]
    spool = material_spool(standin.store, material)
    assign(db, 0, spool)
    ledger.record_bills(db, new_job(db), [Line(1, 0, 1500.0), Line(2, 0, 700.0)], {0: 0})
    faulty = FaultyClient(client, ["lost_answer"])
    outbox = make_outbox(db, faulty)
    with pytest.raises(SpoolmanUnreachable):
        await outbox.deliver_pending()
    await outbox.drain()
    assert [e.state for e in ledger_entries(db)] == [DELIVERED, DELIVERED]
    assert faulty.uses == 1  # applied once, recognised as applied, never sent again
    used = standin.store.get_spool(spool)
    assert float(used["used_length"]) == pytest.approx(2200.0, abs=0.01)
    assert float(used["used_weight"]) == pytest.approx(by_hand(2200.0, density, diameter), rel=1e-9)


class _Filament:
    """What the billing rules read of a file's filament; ``None`` where the file says nothing."""

    def __init__(self, *, mm: float = 0.0, g: float | None = None, density: float | None = None,
                 diameter: float | None = None) -> None:
        self.mm, self.g, self.density, self.diameter = mm, g, density, diameter


def test_grams_when_the_file_lacks_density_or_diameter() -> None:
    """The fallbacks, in order: no filament at all is PLA at 1.75 mm; a density without a diameter is at
    1.75 mm; no density but the file's own grams is its g/mm ratio; neither is PLA's density at the file's
    diameter."""
    from server.billing.rules import filament_grams

    assert filament_grams(None, 500.0) == pytest.approx(by_hand(500.0, 1.24, 1.75), rel=1e-12)
    assert filament_grams(_Filament(density=1.27), 500.0) == pytest.approx(by_hand(500.0, 1.27, 1.75), rel=1e-12)
    assert filament_grams(_Filament(mm=2000.0, g=10.0), 500.0) == pytest.approx(2.5, rel=1e-12)
    assert filament_grams(_Filament(mm=0.5, g=10.0), 0.25) == pytest.approx(5.0, rel=1e-12)  # under 1 mm used
    assert filament_grams(_Filament(mm=0.0, g=10.0, diameter=2.85), 500.0) == pytest.approx(
        by_hand(500.0, 1.24, 2.85), rel=1e-12)  # a ratio over nothing is no ratio
    assert filament_grams(_Filament(diameter=2.85), 500.0) == pytest.approx(by_hand(500.0, 1.24, 2.85), rel=1e-12)
