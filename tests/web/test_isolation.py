"""Browser tests get a fresh stack per module: the demo's Spoolman data as seeded, an empty ledger."""

from __future__ import annotations

from server.sim.spoolman import SpoolmanStore, seed_demo
from tests.billing.ledger_rows import ledger_entries
from tests.web.web_stack import WebStack


def test_this_modules_stack_starts_from_the_demos_data(stack: WebStack) -> None:
    assert stack.spoolman is not None and stack.runtime is not None
    fresh = SpoolmanStore()
    seed_demo(fresh)
    spools, _ = stack.spoolman.store.list_spools({"allow_archived": "true"})
    seeded, _ = fresh.list_spools({"allow_archived": "true"})
    assert [(s["id"], s["extra"], s["used_weight"]) for s in spools] == [
        (s["id"], s["extra"], s["used_weight"]) for s in seeded]
    assert ledger_entries(stack.runtime.db) == []
