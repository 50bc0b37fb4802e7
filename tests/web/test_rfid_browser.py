"""RFID in the phone app: a tag that disagrees with a hand-picked spool is shown and the user decides;
a hand-picked spool on a tray whose tag no spool carries is offered to remember the tag."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page, expect
from test_pwa_browser import open_dialog, tile
from web_stack import PRINTER, WebStack

pytestmark = pytest.mark.browser
NEW_TAG = "DEADBEEF00112233445566778899AABB"


def test_tag_conflict_is_shown_and_the_user_decides(page: Page, api: httpx.Client, stack: WebStack) -> None:
    printer = stack.printer
    assert printer is not None
    # Spool 5 put by hand in tray A1, whose tag belongs to spool 1; after a reconnect every tray's tag
    # is looked at again.
    assert api.put(f"/printers/{quote(PRINTER)}/slots/0", json={"spool_id": 5, "move": True}).status_code == 200
    stack.call(printer.drop_connections)
    deadline = time.monotonic() + 20
    while not api.get(f"/printers/{quote(PRINTER)}/rfid/conflicts").json() and time.monotonic() < deadline:
        time.sleep(0.1)  # RFID matching runs in the background
    page.goto("/")
    conflict = tile(page, 0).locator(".badge.conflict")
    expect(conflict).to_be_visible()
    expect(tile(page, 0)).to_have_attribute("data-spool", "5")  # never overwritten silently
    conflicts = api.get(f"/printers/{quote(PRINTER)}/rfid/conflicts").json()
    assert [(c["tray"], c["manual_spool_id"], c["tag_spool_id"]) for c in conflicts] == [(0, 5, 1)]

    open_dialog(page, 0)
    expect(page.locator(".rfid-conflict")).to_contain_text("belongs to spool #1")
    page.locator('[data-action="use-tag"]').click()
    expect(tile(page, 0)).to_have_attribute("data-spool", "1")
    expect(conflict).to_have_count(0)
    assert api.get(f"/printers/{quote(PRINTER)}/rfid/conflicts").json() == []


def test_offer_to_remember_a_new_tag_on_the_spool_picked_by_hand(
    page: Page, api: httpx.Client, stack: WebStack
) -> None:
    printer = stack.printer
    assert printer is not None and stack.spoolman is not None
    store = stack.spoolman.store
    tag_before = store.get_spool(5)["extra"].get("bambu_tray_uuid")
    stack.call(lambda: printer.push_tray_change(0, 2, tray_uuid=NEW_TAG))
    try:
        page.goto("/")
        expect(tile(page, 2).locator(".badge.rfid")).to_be_visible()
        open_dialog(page, 2)
        page.get_by_label("Find a spool").fill("polyterra")
        page.locator('.spool-pick[data-spool-id="5"]').click()
        offer = page.locator(".rfid-offer")
        expect(offer).to_contain_text("Remember it on spool #5")
        page.locator('[data-action="remember-tag"]').click()
        expect(page.locator("#slot-dialog")).to_be_hidden()
        spool = stack.spoolman.store.get_spool(5)
        assert json.loads(spool["extra"]["bambu_tray_uuid"]) == NEW_TAG
        expect(tile(page, 2)).to_have_attribute("data-spool", "5")
    finally:  # no tag left behind: the tray's tag and the spool's remembered one as they were
        stack.call(lambda: printer.push_tray_change(0, 2, tray_uuid="0" * 32))
        store.update_spool(5, {"extra": {"bambu_tray_uuid": tag_before}})
        assert store.get_spool(5)["extra"].get("bambu_tray_uuid") == tag_before
