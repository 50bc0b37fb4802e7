"""Accessibility in Debian's Chromium: axe-core finds no serious or critical violation on any page or
dialog, at 360 px and desktop width, light and dark; nothing scrolls sideways at 360 px; the controls
of the main flows are at least 44x44 CSS px; the slot dialog is a bottom sheet on a phone. This
module runs its own stack: it leaves a waiting bill, a question and an RFID conflict in place."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from a11y import NARROW, WIDE, context, overflow, small_targets, violations
from credentials import csrf_pair
from playwright.sync_api import Browser, Page, expect
from test_auth_browser import PASSWORD, Site
from test_ledger_browser import bill, entry_states, wait_for
from test_pwa_browser import open_dialog, tile
from web_stack import DEMO_SLOTS, PRINTER, WebStack

from server.billing.settlement import DELIVERED
from server.https.service import LocalHttps
from server.https.store import tls_files
from server.sim.demo import DEMO_FILE, DEMO_MAPPING
from server.web.phone_setup import STATE_KEY

pytestmark = pytest.mark.browser

VIEWS = [pytest.param((NARROW, scheme), id=f"360-{scheme}") for scheme in ("light", "dark")] + [
    pytest.param((WIDE, scheme), id=f"desktop-{scheme}") for scheme in ("light", "dark")]
SCAN_FIRST = "/scan?code=" + quote("web+spoolman:s-4")
NEW_TAG = "DEADBEEF00112233445566778899AABB"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    folder = tmp_path_factory.mktemp("a11y-stack")
    running = WebStack(folder).start()
    # "Set up this phone" needs Layerwise's own HTTPS (as `layerwise serve` has): its authority, no listener.
    local = LocalHttps(tls_files(folder / "data"), port=7914, hostname="layerwise", addresses=lambda: ["127.0.0.1"])
    local.refresh()
    assert running.web is not None
    setattr(running.web.app.state, STATE_KEY, local)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def scene(stack: WebStack) -> dict[str, Any]:
    """Something on every page: a delivered job, a question, a waiting bill and an RFID conflict."""
    printer = stack.printer
    assert printer is not None
    with httpx.Client(base_url=stack.url + "/api/v1", timeout=10, **csrf_pair()) as api:
        for tray, spool in DEMO_SLOTS.items():
            api.put(f"/printers/{quote(PRINTER)}/slots/{tray}", json={"spool_id": spool, "move": True})
        job, *ids = bill(stack, "Vase.gcode.3mf", {0: 0}, 0, range(0, 4), 20.0)
        wait_for(lambda: entry_states(stack, ids) == {DELIVERED})
        bill(stack, "Gear set.gcode.3mf", {}, 1, range(0, 3), 8.0)  # which tray fed filament 2?
        api.delete(f"/printers/{quote(PRINTER)}/slots/2")
        bill(stack, "Cable clip.gcode.3mf", {0: 2}, 0, range(0, 2), 5.0)  # waits for a spool in A3
        # Spool 5 put by hand in tray A1, whose tag belongs to spool 1: a conflict after a reconnect.
        assert api.put(f"/printers/{quote(PRINTER)}/slots/0", json={"spool_id": 5, "move": True}).status_code == 200
        stack.call(printer.drop_connections)
        deadline = time.monotonic() + 20
        while not api.get(f"/printers/{quote(PRINTER)}/rfid/conflicts").json() and time.monotonic() < deadline:
            time.sleep(0.1)
    # A print under way: the card's progress, layer, time left and plate preview.
    stack.call(lambda: printer.start_print(DEMO_FILE, ams_mapping=DEMO_MAPPING, subtask_name="Layerwise demo"))
    stack.call(lambda: printer.goto_layer(14))
    return {"job": job}


def pages(job: int) -> dict[str, str]:
    return {"dashboard": "/", "jobs": "/jobs", "job": f"/jobs/{job}", "attention": "/attention",
            "spool ledger": "/spools/1/ledger", "correction": f"/jobs/{job}/correct?from_spool=1",
            "connect": "/connect", "scan": "/scan", "scan first": SCAN_FIRST,
            "scan first, a filament's label": "/scan?code=" + quote("web+spoolman:f-1"), "setup": "/setup",
            "offline": "/offline", "schema": "/api/v1/schema", "farm": "/farm", "usage reports": "/reports",
            "one printer": "/printers/" + quote(PRINTER), "will it last": "/forecast"}


@pytest.fixture(params=VIEWS)
def view(request: pytest.FixtureRequest, browser: Browser, stack: WebStack) -> Iterator[Page]:
    viewport, scheme = request.param
    made = context(browser, stack.url, viewport, scheme, permissions=["camera"])
    yield made.new_page()
    made.close()


def check(page: Page, name: str, found: dict[str, list[str]], include: str | None = None) -> None:
    """axe's findings (and, at 360 px, sideways scrolling) for what the page shows now, kept under ``name``."""
    problems = violations(page, include)
    width = page.viewport_size["width"] if page.viewport_size else 0
    if width <= NARROW["width"] and (extra := overflow(page)) > 0:
        problems.append(f"scrolls sideways by {extra} px at {width} px")
    if problems:
        found[name] = problems


def report(found: dict[str, list[str]]) -> str:
    return "\n".join(f"{name}:\n  " + "\n  ".join(lines) for name, lines in found.items())


def test_every_page_passes_axe_and_fits_a_phone(view: Page, scene: dict[str, Any]) -> None:
    found: dict[str, list[str]] = {}
    for name, path in pages(scene["job"]).items():
        view.goto(path)
        view.wait_for_load_state("load")
        check(view, name, found)
    view.goto(f"/jobs/{scene['job']}/correct?from_spool=1")  # the correction's preview, after picking a spool
    view.locator('#picker-results .spool-pick[data-spool-id="7"]').click()
    expect(view.locator(".preview")).to_be_visible()
    check(view, "correction preview", found)
    assert not found, report(found)


def test_every_dialog_passes_axe(view: Page, scene: dict[str, Any]) -> None:
    found: dict[str, list[str]] = {}
    page = view
    page.goto("/")
    open_dialog(page, 1)
    expect(page.locator("#dialog-body .htmx-added")).to_have_count(0)
    page.get_by_label("Find a spool").fill("pla")
    expect(page.locator("#spool-results .spool-pick").first).to_be_visible()
    check(page, "slot dialog with search results", found)
    page.get_by_label("Find a spool").fill("")
    page.locator('#spool-results .spool-pick[data-spool-id="2"]').click()  # spool 2 sits in tray A4
    expect(page.locator("#dialog-title")).to_contain_text("Move spool #2?")
    check(page, "move confirmation", found)
    page.keyboard.press("Escape")
    expect(page.locator("#slot-dialog")).to_be_hidden()
    open_dialog(page, 0)
    expect(page.locator(".rfid-conflict")).to_be_visible()
    check(page, "RFID conflict", found)
    page.keyboard.press("Escape")
    expect(page.locator("#slot-dialog")).to_be_hidden()
    open_dialog(page, 1)  # the fake camera shows spool 3's label
    page.locator('[data-action="scan"]').click()
    expect(page.locator("#scan-result .spool-card")).to_be_visible(timeout=30_000)
    check(page, "slot dialog after a scan", found)
    page.keyboard.press("Escape")
    expect(page.locator("#slot-dialog")).to_be_hidden()
    page.goto("/attention")
    page.locator('[data-action="assign-spool"]').first.click()
    expect(page.locator("#slot-dialog")).to_be_visible()
    check(page, "assign a spool from the attention list", found)
    page.keyboard.press("Escape")
    expect(page.locator("#slot-dialog")).to_be_hidden()
    page.locator('[data-action="repoint"]').first.click()
    expect(page.locator("#dialog-title")).to_have_text("Send to another spool")
    check(page, "send bills to another spool", found)
    assert not found, report(found)


def test_the_offer_to_remember_a_tag_passes_axe(view: Page, stack: WebStack, scene: dict[str, Any]) -> None:
    printer = stack.printer
    assert printer is not None
    page = view
    stack.call(lambda: printer.push_tray_change(0, 3, tray_uuid=NEW_TAG))  # a spool no tag names is loaded in A4
    try:
        page.goto("/")
        expect(tile(page, 3).locator(".badge.rfid")).to_be_visible()
        open_dialog(page, 3)
        page.locator('.spool-pick[data-spool-id="2"]').click()
        expect(page.locator(".rfid-offer")).to_be_visible()
        found: dict[str, list[str]] = {}
        check(page, "remember an RFID tag", found)
        assert not found, report(found)
    finally:
        stack.call(lambda: printer.push_tray_change(0, 3, tray_uuid="0" * 32))
        with httpx.Client(base_url=stack.url + "/api/v1", timeout=10, **csrf_pair()) as api:
            api.put(f"/printers/{quote(PRINTER)}/slots/3", json={"spool_id": 2, "move": True})


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_sign_in_pages_pass_axe(browser: Browser, tmp_path: Path, scheme: str) -> None:
    found: dict[str, list[str]] = {}
    with Site(tmp_path / "data") as site:
        views = {width: context(browser, site.url, viewport, scheme,
                                extra_http_headers={"X-Forwarded-For": "192.0.2.7"}).new_page()
                 for width, viewport in ((360, NARROW), (1280, WIDE))}
        for width, page in views.items():
            page.goto("/")
            expect(page.locator("h1")).to_have_text("Create a password")
            check(page, f"first run at {width}", found)
        page = views[360]
        page.get_by_label("Name").fill("ann")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Password again").fill(PASSWORD)
        page.get_by_role("button", name="Create and sign in").click()
        expect(page.locator("#live")).to_have_text("Live")
        page.locator("#install").evaluate("button => { button.hidden = false; }")  # the widest top bar
        check(page, "dashboard signed in, with Install app", found)
        page.get_by_role("button", name="Sign out").click()
        for width, page in views.items():
            page.goto("/login")
            page.get_by_label("Name").fill("ann")
            page.get_by_label("Password").fill("wrong horse battery")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("alert")).to_have_text("Wrong name or password.")
            check(page, f"sign in (wrong password) at {width}", found)
            page.context.close()
    assert not found, report(found)


def test_main_flows_have_thumb_sized_targets_and_a_bottom_sheet(browser: Browser, stack: WebStack,
                                                                 scene: dict[str, Any]) -> None:
    made = context(browser, stack.url, NARROW, "light")
    page = made.new_page()
    small: dict[str, list[str]] = {}
    for name, path in {"dashboard": "/", "attention": "/attention", "scan first": SCAN_FIRST, "scan": "/scan",
                       "job": f"/jobs/{scene['job']}", "jobs": "/jobs", "setup": "/setup",
                       "spool ledger": "/spools/1/ledger", "farm": "/farm", "will it last": "/forecast",
                       "usage reports": "/reports"}.items():
        page.goto(path)
        page.wait_for_load_state("load")
        if found := small_targets(page):
            small[name] = found
    page.goto("/")
    open_dialog(page, 1)
    expect(page.locator("#spool-results .spool-pick").first).to_be_visible()
    if found := small_targets(page, "#slot-dialog button, #slot-dialog a, #slot-dialog input"):
        small["slot dialog"] = found
    assert not small, report(small)

    # A bottom sheet: on the bottom edge, the screen's width, its main actions in the lowest quarter (in
    # reach of the thumb of the hand that holds the phone), however far the spool list is scrolled.
    box = page.locator("#slot-dialog").bounding_box()
    assert box is not None
    assert abs(box["y"] + box["height"] - NARROW["height"]) < 1 and box["width"] == NARROW["width"]
    for scrolled in (0, 10_000):
        page.locator("#slot-dialog").evaluate("(dialog, top) => { dialog.scrollTop = top; }", scrolled)
        for action in ('[data-action="scan"]', ".sheet-close"):
            target = page.locator(f"#slot-dialog {action}").bounding_box()
            assert target is not None
            assert target["y"] > NARROW["height"] * 0.75 and target["y"] + target["height"] <= NARROW["height"], action
    page.locator("#slot-dialog .sheet-close").click()
    expect(page.locator("#slot-dialog")).to_be_hidden()
    made.close()


_HOVER_ONLY = """() => {
  const hiding = /(^|;)\\s*(display|visibility|opacity|max-height|clip|clip-path)\\s*:/;
  const found = [];
  for (const sheet of document.styleSheets) {
    const walk = (rules) => { for (const rule of rules) {
      if (rule.cssRules && !rule.selectorText) walk(rule.cssRules);
      else if (rule.selectorText && rule.selectorText.includes(":hover") && hiding.test(rule.style.cssText)) {
        found.push(rule.cssText);
      }
    } };
    walk(sheet.cssRules);
  }
  return found;
}"""


def test_nothing_is_shown_only_on_hover(page: Page) -> None:
    """A phone has no hover: no style may show or hide anything on hover (only borders and colours)."""
    page.goto("/")
    assert page.evaluate(_HOVER_ONLY) == []
