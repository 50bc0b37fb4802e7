"""The dashboard people trust (issue 12), in Chromium against the real app: the Jobs page, the end-of-print
summary, waiting bills on the card, the offline card, no empty pill, a refused access code that names its
fix, the no-printers page, the spool list's marks and the demo banner. This module runs its own stacks, so
its jobs and bills never meet the other browser tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect
from pydantic import SecretStr
from test_pwa_browser import open_dialog, tile
from web_stack import DEMO_SLOTS, PRINTER, WebStack

from server.billing import ledger
from server.config import Settings
from server.events import Event
from server.jobs import store as job_store
from server.sim.demo import DEMO_FILE, DEMO_MAPPING

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    running = WebStack(tmp_path_factory.mktemp("dashboard-stack")).start()
    yield running
    running.stop()


def card(page: Page) -> Locator:
    return page.locator(f'[data-printer-card="{PRINTER}"]')


class Line:
    def __init__(self, layer: int, filament_index: int, mm: float) -> None:
        self.layer, self.filament_index, self.mm = layer, filament_index, mm
        self.grams, self.estimate = mm * 0.003, False


def test_live_updates_never_show_an_empty_pill_and_keep_confirmations(page: Page, api: httpx.Client,
                                                                      stack: WebStack) -> None:
    printer = stack.printer
    assert printer is not None
    page.goto("/")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    toast = page.locator("#toast")
    stack.call(lambda: printer.start_print(DEMO_FILE, ams_mapping=DEMO_MAPPING, subtask_name="Pill test"))
    for layer in (2, 3):
        stack.call(lambda layer=layer: printer.goto_layer(layer))
        expect(card(page).locator(".layer")).to_contain_text(f"layer {layer} of")
    # Checked at once, not waited for: the empty pill hid itself after 4 s, so waiting would hide the bug.
    # The card's refresh event went out before its new layer arrived, so the pill would already be up.
    assert toast.evaluate("t => t.hidden"), toast.inner_text()
    # The "In use" badge of the active tray stays on one line on a 390 px phone.
    badge = page.locator(".badge.in-use").first
    expect(badge).to_be_visible()
    box = badge.bounding_box()
    assert box is not None and box["height"] < 28, box

    open_dialog(page, 1)
    page.locator('.spool-pick[data-spool-id="7"]').click()
    expect(toast).to_have_text("Spool #7 assigned.")
    stack.call(lambda: printer.goto_layer(4))  # an update right after the confirmation does not blank it
    expect(card(page).locator(".layer")).to_contain_text("layer 4 of")
    expect(toast).to_have_text("Spool #7 assigned.")
    stack.call(printer.cancel)


def test_end_of_print_summary_then_jobs_page_with_grams_and_cost(page: Page, api: httpx.Client,
                                                                  stack: WebStack, artifacts: Path) -> None:
    printer, store = stack.printer, stack.store
    assert printer is not None
    store.update_spool(1, {"price": 25.0})  # 25 for the 1000 g spool: 0.025 a gram
    stack.call(lambda: printer.start_print(DEMO_FILE, ams_mapping=DEMO_MAPPING, subtask_name="Layerwise demo"))
    page.goto("/")
    stack.call(lambda: printer.goto_layer(6))
    expect(card(page).locator(".layer")).to_contain_text("layer 6 of")
    expect(card(page).locator("img.plate")).to_be_visible(timeout=30_000)
    stack.call(printer.finish)
    summary = card(page).locator("[data-end-of-print]")
    expect(summary).to_have_text(re.compile(r"^\d+\.\d g billed to 4 spools$"), timeout=30_000)
    expect(card(page).locator(".state")).to_have_text("Finished")
    expect(card(page).locator("img.plate")).to_be_visible()  # a finished job keeps its plate
    page.screenshot(path=artifacts / "end-of-print-phone.png", full_page=True)

    page.locator(".page-links a", has_text="Jobs").click()
    expect(page).to_have_url(re.compile(r"/jobs$"))
    row = page.locator(".job-row").first
    expect(row.locator(".job-state")).to_have_text("Finished")
    expect(row).to_contain_text(PRINTER)
    expect(row.locator("img.plate")).to_be_visible()
    expect(row.locator(".usage li")).to_have_count(4)
    black = row.locator('.usage li[data-spool="1"]')
    expect(black).to_contain_text("#1 PLA Basic Black")
    expect(black.locator(".usage-figures")).to_have_text(re.compile(r"^\d+\.\d g · \d+\.\d\d$"))
    grams = float(black.locator(".usage-figures").inner_text().split(" g")[0])
    cost = float(black.locator(".usage-figures").inner_text().split("· ")[1])
    assert cost == pytest.approx(grams * 0.025, abs=0.01)
    page.screenshot(path=artifacts / "jobs-phone.png", full_page=True)
    row.locator(".job-link").click()
    expect(page.locator("h1")).to_be_visible()
    expect(page.locator(".job-usage .plate-large img")).to_be_visible()  # the plate, shown once
    expect(page.locator("main img[src$='thumbnail.png']")).to_have_count(1)
    expect(page.locator('.part[data-spool="1"] .cost dd')).to_have_text(re.compile(r"^\d+\.\d\d$"))


def test_jobs_page_is_paginated(page: Page, stack: WebStack) -> None:
    runtime = stack.runtime
    assert runtime is not None

    async def many_jobs() -> None:
        for n in range(25):
            job = job_store.create_job(runtime.db, "Old printer", f"Old {n:02}", state="finished",
                                       file_name=f"Old {n:02}.gcode.3mf")
            job_store.save_checkpoint(runtime.db, job.id, final=True)

    stack.call(many_jobs)
    page.goto("/jobs")
    expect(page.locator(".job-row")).to_have_count(20)
    page.locator(".pager a", has_text="Older").click()
    expect(page).to_have_url(re.compile(r"offset=20"))
    expect(page.locator(".job-row").first).to_be_visible()
    page.locator(".pager a", has_text="Newer").click()
    expect(page.locator(".job-row")).to_have_count(20)


def test_waiting_bills_show_on_the_card_with_their_reason_and_link_to_the_list(
    page: Page, api: httpx.Client, stack: WebStack, artifacts: Path
) -> None:
    runtime = stack.runtime
    assert runtime is not None
    api.delete(f"/printers/{quote(PRINTER)}/slots/2")  # tray A3 has no spool

    async def waiting_bills() -> None:
        job = job_store.create_job(runtime.db, PRINTER, "Cable clip", state="finished", file_name="Cable clip.3mf")
        ledger.record_bills(runtime.db, job.id, [Line(n, 0, 20.0) for n in range(3)], {0: 2})
        runtime.bus.publish(Event("ledger", PRINTER, {}))

    stack.call(waiting_bills)
    page.goto("/")
    strip = card(page).locator("a.waiting")
    expect(strip).to_have_attribute("data-waiting", "3")
    expect(strip).to_contain_text("3 bills waiting")
    expect(strip).to_contain_text("Waiting for a spool in tray A3 of Demo X1C.")
    page.screenshot(path=artifacts / "waiting-bills-phone.png", full_page=True)
    strip.click()
    expect(page).to_have_url(re.compile(r"/attention$"))
    expect(page.locator('#attention-list .group[data-reason="waiting_spool"]')).to_contain_text("Cable clip")
    api.put(f"/printers/{quote(PRINTER)}/slots/2", json={"spool_id": DEMO_SLOTS[2]})  # delivers them
    page.goto("/")
    expect(card(page).locator("a.waiting")).to_have_count(0)


def test_offline_card_has_a_small_pill_and_no_gap(page: Page, api: httpx.Client, stack: WebStack,
                                                  artifacts: Path) -> None:
    printer = stack.printer
    assert printer is not None
    page.goto("/")
    status = card(page).locator(".status")
    stack.call(printer.stop_broker)
    try:
        expect(status).to_have_text("Offline", timeout=30_000)
        box = status.bounding_box()
        head = card(page).locator(".printer-head").bounding_box()
        assert box is not None and head is not None
        assert box["height"] < 32 and box["width"] < 120, box  # a pill, not the offline page's panel
        assert head["height"] < 60, head  # no 200 px gap under the name
        expect(card(page).locator(".state")).to_have_text("Not connected")
        page.screenshot(path=artifacts / "offline-card-phone.png")
    finally:
        stack.call(printer.start_broker)
    expect(status).to_have_text("Online", timeout=30_000)


def test_spool_list_marks_the_slots_own_spool_and_says_where_others_move_from(
    page: Page, api: httpx.Client
) -> None:
    page.goto("/")
    open_dialog(page, 1)  # tray A2 holds spool #3 (white)
    own = page.locator('.spool-pick[data-spool-id="3"]')
    expect(own).to_contain_text("In this slot")
    expect(own).to_be_disabled()
    expect(page.locator('.spool-pick[data-spool-id="1"]')).to_contain_text("move from Demo X1C tray A1")
    expect(page.locator('.spool-pick[data-spool-id="1"] .pick-action')).to_have_text("Move")
    expect(page.locator('.spool-pick[data-spool-id="6"]')).to_contain_text("move from Demo X1C external spool")
    expect(page.locator('.spool-pick[data-spool-id="5"] .pick-action')).to_have_text("Assign")
    meta = page.locator(".current .spool-meta").first
    expect(meta).to_contain_text("white")
    expect(meta).not_to_contain_text("#ffffff")


def test_lone_external_spool_and_demo_banner(page: Page, api: httpx.Client) -> None:
    page.goto("/")
    expect(tile(page, 254).locator(".slot-label")).to_have_text("External")
    banner = page.locator(".demo-banner")
    expect(banner).to_contain_text("demo")
    banner.locator("a").click()
    expect(page.locator("h1")).to_have_text("Connect your printer")
    expect(page.locator("main")).to_contain_text("Settings → LAN Only")


def test_thumbnail_404_is_json_and_schema_loads_nothing_foreign(stack: WebStack) -> None:
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        missing = client.get("/api/v1/jobs/999999/thumbnail.png")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/json")
        assert "no thumbnail" in missing.json()["detail"]
        schema = client.get("/api/v1/schema")
        assert schema.status_code == 200 and schema.headers["content-type"].startswith("text/html")
        assert "<script" not in schema.text and "cdn" not in schema.text.lower()
        assert 'href="/api/v1/schema/openapi.json"' in schema.text
        spec = client.get("/api/v1/schema/openapi.json")
        assert spec.status_code == 200 and "/api/v1/jobs" in spec.json()["paths"]


def _wrong_code(settings: Settings) -> Settings:
    printer = settings.printers[0].model_copy(update={"access_code": SecretStr("wrong999")})
    return settings.model_copy(update={"printers": (printer,)})


def _no_printers(settings: Settings) -> Settings:
    return settings.model_copy(update={"printers": (), "seed_mappings": {}})


def test_refused_access_code_names_the_fix(page: Page, tmp_path: Path, artifacts: Path) -> None:
    refused = WebStack(tmp_path, adjust=_wrong_code, wait_online=False).start()
    try:
        page.goto(refused.url + "/")
        fix = card(page).locator("[data-fix]")
        expect(fix).to_have_text(
            "Access code refused: check it on the printer's screen under Settings → LAN Only.", timeout=30_000)
        expect(card(page).locator(".state")).not_to_have_text("Idle")
        expect(page.locator(".demo-banner")).to_have_count(0)  # not the demo's printer any more
        page.screenshot(path=artifacts / "refused-code-phone.png")
    finally:
        refused.stop()


def test_no_printers_page_is_live_and_says_how_to_connect(page: Page, tmp_path: Path) -> None:
    empty = WebStack(tmp_path, adjust=_no_printers, wait_online=False).start()
    try:
        page.goto(empty.url + "/")
        expect(page.locator("main .notice")).to_contain_text("No printers configured yet")
        expect(page.locator('main .notice a[href="/connect"]')).to_be_visible()
        expect(page.locator("#live")).to_have_attribute("data-state", "live")  # never "Connecting…" for ever
        expect(page.locator("#live")).to_have_text("Live")
    finally:
        empty.stop()


def test_spoolman_down_says_how_many_bills_wait_to_be_sent(page: Page, api: httpx.Client, stack: WebStack) -> None:
    spoolman, runtime = stack.spoolman, stack.runtime
    assert spoolman is not None and runtime is not None
    stack.call(spoolman.stop)

    async def queued_bills() -> None:
        runtime.spools.invalidate()
        job = job_store.create_job(runtime.db, PRINTER, "Queued", state="finished", file_name="Queued.3mf")
        ledger.record_bills(runtime.db, job.id, [Line(n, 0, 10.0) for n in range(2)], {0: 0})

    try:
        stack.call(queued_bills)
        page.goto("/")
        notice = card(page).locator("[data-spoolman-down]")
        expect(notice).to_contain_text("Spoolman cannot be reached")
        expect(notice).to_contain_text(re.compile(r"\d+ bills wait to be sent"))
    finally:
        stack.call(spoolman.start)
