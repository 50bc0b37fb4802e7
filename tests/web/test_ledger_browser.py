"""The ledger in the phone app (Chromium): bills that need a person are listed with their reason, one tap
settles them, the bill reaches the Spoolman stand-in and leaves the list. Also the usage log, the job page
and a correction. This module runs its own stack, so its bills never meet the other browser tests."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page, expect
from test_pwa_browser import open_dialog, tile
from web_stack import PRINTER, WebStack

from server.billing import ledger
from server.billing.settlement import DELIVERED
from server.jobs import store as job_store
from tests.billing.ledger_rows import ledger_entries

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    """Fresh data for this module: its own printer, Spoolman stand-in and ledger."""
    running = WebStack(tmp_path_factory.mktemp("ledger-stack")).start()
    yield running
    running.stop()


class Line:
    def __init__(self, layer: int, filament_index: int, mm: float) -> None:
        self.layer, self.filament_index, self.mm = layer, filament_index, mm
        self.grams, self.estimate = mm * 0.003, False


def bill(stack: WebStack, name: str, mapping: dict[int, int], filament: int, layers: range, mm: float) -> list[int]:
    """Bills written by the ledger's own function, as the tracker writes them, then the outbox woken."""
    runtime = stack.runtime
    assert runtime is not None

    async def write() -> list[int]:
        job = job_store.create_job(runtime.db, PRINTER, name, state="finished", file_name=name, plate=1)
        rows = ledger.record_bills(runtime.db, job.id, [Line(n, filament, mm) for n in layers], mapping)
        assert runtime.outbox is not None
        runtime.outbox.wake()
        return [job.id, *(row.id for row in rows)]

    return stack.call(write)


def entry_states(stack: WebStack, ids: list[int]) -> set[str]:
    assert stack.runtime is not None
    return {e.state for e in ledger_entries(stack.runtime.db) if e.id in ids}


def used_mm(stack: WebStack, spool_id: int) -> float:
    assert stack.spoolman is not None
    return float(stack.spoolman.store.get_spool(spool_id)["used_length"])


def wait_for(condition: Callable[[], Any], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.05)


def group(page: Page, reason: str) -> Any:
    return page.locator(f'#attention-list .group[data-reason="{reason}"]')


def test_a_waiting_bill_is_listed_the_user_assigns_a_spool_and_it_is_delivered(
    page: Page, api: httpx.Client, stack: WebStack, artifacts: Path
) -> None:
    api.delete(f"/printers/{quote(PRINTER)}/slots/2")  # tray A3 has no spool
    _job, *ids = bill(stack, "Cable clip.gcode.3mf", {0: 2}, 0, range(0, 4), 25.0)
    page.goto("/")
    badge = page.locator(".attention-link")
    expect(badge.locator(".count")).to_have_text("1")
    badge.click()
    waiting = group(page, "waiting_spool")
    expect(waiting).to_have_count(1)
    expect(waiting).to_contain_text("Cable clip")
    expect(waiting).to_contain_text("Waiting for a spool in tray A3 of Demo X1C.")
    expect(waiting).to_contain_text("4 bills · 100.0 mm")
    page.screenshot(path=artifacts / "attention-phone.png", full_page=True)

    before = used_mm(stack, 5)
    waiting.locator('[data-action="assign-spool"]').click()  # the slot dialog's own spool picker
    expect(page.locator("#dialog-title")).to_contain_text("A3")
    page.get_by_label("Find a spool").fill("polyterra")
    expect(page.locator("#spool-results .spool-pick")).to_have_count(1)  # the search has answered
    page.locator('.spool-pick[data-spool-id="5"]').click()
    expect(page.locator("#slot-dialog")).to_be_hidden()
    expect(waiting).to_have_count(0)  # the list reloads by itself
    expect(page.locator("#attention-list .notice.ok")).to_contain_text("Nothing needs attention")
    wait_for(lambda: entry_states(stack, ids) == {DELIVERED})
    wait_for(lambda: used_mm(stack, 5) - before > 99.99)
    assert used_mm(stack, 5) - before == pytest.approx(100.0, abs=0.01)

    page.goto("/")
    expect(page.locator(".attention-link")).to_have_count(0)
    expect(tile(page, 2)).to_have_attribute("data-spool", "5")


def test_bills_for_a_deleted_spool_are_sent_to_another_spool_from_the_list(
    page: Page, api: httpx.Client, stack: WebStack
) -> None:
    assert stack.spoolman is not None
    spool = stack.spoolman.store.create_spool({"filament_id": 1, "location": "Shelf 9"})["id"]
    assert api.put(f"/printers/{quote(PRINTER)}/slots/2", json={"spool_id": spool, "move": True}).status_code == 200
    stack.spoolman.store.delete_spool(spool)  # deleted in Spoolman while it sits in the tray
    job, *ids = bill(stack, "Hinge.gcode.3mf", {0: 2}, 0, range(0, 3), 10.0)
    wait_for(lambda: DELIVERED not in entry_states(stack, ids) and "ready" not in entry_states(stack, ids))
    page.goto("/attention")
    listed = page.locator(f'#attention-list .group[data-job="{job}"]')
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text(f"{spool}")  # the reason names the spool that is gone
    before = used_mm(stack, 4)
    listed.locator('[data-action="repoint"]').click()
    expect(page.locator("#dialog-title")).to_have_text("Send to another spool")
    page.get_by_label("Find a spool").fill("red")
    expect(page.locator("#picker-results .spool-pick")).to_have_count(1)  # the search has answered
    page.locator('#picker-results .spool-pick[data-spool-id="4"]').click()
    expect(page.locator("#slot-dialog")).to_be_hidden()
    expect(page.locator("#toast")).to_contain_text("3 bills sent to spool #4")
    expect(listed).to_have_count(0)
    wait_for(lambda: entry_states(stack, ids) == {DELIVERED})
    assert used_mm(stack, 4) - before == pytest.approx(30.0, abs=0.01)


def test_never_guess_the_user_taps_the_tray_of_an_unknown_filament(
    page: Page, api: httpx.Client, stack: WebStack, artifacts: Path
) -> None:
    job, *ids = bill(stack, "Gear set.gcode.3mf", {}, 1, range(0, 5), 8.0)
    page.goto("/")  # the dashboard asks, one tap answers
    question = page.locator(f'#attention-badge .question[data-job="{job}"]')
    expect(question).to_contain_text("which tray fed filament 2 of Gear set?")
    page.screenshot(path=artifacts / "dashboard-question-phone.png", full_page=True)
    before = used_mm(stack, 3)  # tray A2 holds spool 3
    question.locator('[data-action="pick-tray"][data-tray="1"]').click()
    expect(question).to_have_count(0)
    expect(page.locator(".attention-link")).to_have_count(0)
    wait_for(lambda: entry_states(stack, ids) == {DELIVERED})
    assert used_mm(stack, 3) - before == pytest.approx(40.0, abs=0.01)

    job, *ids = bill(stack, "Knob.gcode.3mf", {}, 0, range(0, 2), 5.0)  # the same, from the list
    page.goto("/attention")
    asking = page.locator(f'#attention-list .group[data-job="{job}"]')
    expect(asking).to_contain_text("Which tray fed filament 1 of Knob?")
    asking.locator('[data-action="pick-tray"][data-tray="0"]').click()
    expect(asking).to_have_count(0)
    wait_for(lambda: entry_states(stack, ids) == {DELIVERED})


def test_usage_log_job_page_and_a_correction(page: Page, api: httpx.Client, stack: WebStack, artifacts: Path) -> None:
    job, *ids = bill(stack, "Vase.gcode.3mf", {0: 0}, 0, range(0, 6), 20.0)  # tray A1: spool 1
    wait_for(lambda: entry_states(stack, ids) == {DELIVERED})
    page.goto(f"/jobs/{job}")
    part = page.locator('.part[data-spool="1"]')
    expect(part).to_contain_text("layers 0–5")
    expect(part).to_contain_text("120.0 mm")
    page.screenshot(path=artifacts / "job-phone.png", full_page=True)
    part.get_by_role("link", name="Every layer").click()
    expect(page.locator(".entries .entry")).to_have_count(6)
    expect(page.locator(".entries .entry").first).to_contain_text("layer 5 · filament 1 · A1")
    expect(page.locator(".entries .entry").first.locator(".state-pill")).to_have_text("delivered")
    page.screenshot(path=artifacts / "spool-log-phone.png", full_page=True)

    old_before, new_before = used_mm(stack, 1), used_mm(stack, 7)
    page.goto(f"/jobs/{job}")
    page.locator('[data-action="correct"]').click()
    page.locator('#picker-results .spool-pick[data-spool-id="7"]').click()
    expect(page.locator(".preview")).to_contain_text("120.0 mm of Vase move from spool #1 to spool #7")
    page.screenshot(path=artifacts / "correction-phone.png", full_page=True)
    page.locator('[data-action="confirm-correction"]').click()
    expect(page.locator('[data-done="correction"]')).to_be_visible()
    wait_for(lambda: used_mm(stack, 7) - new_before > 119.99)
    wait_for(lambda: old_before - used_mm(stack, 1) > 119.99)  # the refund is a delivery of its own
    assert used_mm(stack, 7) - new_before == pytest.approx(120.0, abs=0.01)
    assert old_before - used_mm(stack, 1) == pytest.approx(120.0, abs=0.01)
    page.goto("/spools/7/ledger")
    expect(page.locator('.entry[data-kind="charge"]')).to_contain_text("Charge: correction, moved from spool #1")
    page.goto("/spools/1/ledger")
    expect(page.locator('.entry[data-kind="refund"]')).to_contain_text("-120.00 mm")
    expect(page.locator('.entry[data-kind="refund"]')).to_contain_text("Refund: correction, moved to spool #7")
    page.screenshot(path=artifacts / "spool-log-correction-phone.png")


def test_the_usage_log_shows_new_deliveries_without_a_reload(page: Page, api: httpx.Client, stack: WebStack) -> None:
    page.goto("/spools/6/ledger")  # the external spool (tray 254)
    page.evaluate("window.notReloaded = true")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    rows = page.locator(".entries .entry")
    already = rows.count()
    _job, *ids = bill(stack, "Peg.gcode.3mf", {0: 254}, 0, range(0, 2), 4.0)
    wait_for(lambda: entry_states(stack, ids) == {DELIVERED})
    expect(rows).to_have_count(already + 2)
    expect(rows.first).to_contain_text("Peg")
    assert page.evaluate("window.notReloaded") is True


def test_an_archived_spool_says_so_on_its_slot_and_in_its_log(page: Page, api: httpx.Client) -> None:
    assert api.put(f"/printers/{quote(PRINTER)}/slots/2", json={"spool_id": 8, "move": True}).status_code == 200
    page.goto("/")
    expect(tile(page, 2).locator(".archived-note")).to_have_text("Archived in Spoolman")
    open_dialog(page, 2)
    expect(page.locator("#dialog-body .archived-note")).to_contain_text("keeps billing")
    page.locator('[data-action="usage-log"]').click()  # the spool's log is one tap from its slot
    expect(page).to_have_url(re.compile(r"/spools/8/ledger$"))
    expect(page.locator(".archived-note")).to_contain_text("archived in Spoolman")
    expect(page.locator(".archived-note")).to_contain_text("keeps billing")
