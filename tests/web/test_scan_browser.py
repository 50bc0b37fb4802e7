"""Scanning on a real home network: plain http, no secure context, so no live camera: the phone takes a
photo of the label (a file input) and the page decodes it. And scan first: a label scanned with no slot
open asks where the spool goes (/scan, also the handler of Spoolman's web+spoolman: links).

Chromium reaches the app as http://layerwise.lan:PORT (mapped to 127.0.0.1), which, unlike localhost,
is not a secure context: navigator.mediaDevices is absent, as on a phone on the LAN."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect
from web_stack import CHROMIUM, CHROMIUM_ARGS, PHONE, PRINTER, WebStack

from server.web.phone_setup import STAY_COOKIE

pytestmark = pytest.mark.browser

PHOTOS = Path(__file__).parents[1] / "fixtures" / "label-photos"
CASES = json.loads((Path(__file__).parent / "label_codes.json").read_text())["cases"]
HOST = "layerwise.lan"


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # No fake camera here: without a secure context the browser offers none anyway.
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {HOST} 127.0.0.1", "--disable-features=HttpsUpgrades"],
    )
    yield launched
    launched.close()


@pytest.fixture
def lan(browser: Browser, stack: WebStack) -> Iterator[Page]:
    """A phone on the home network: the app over plain http by a name that is not localhost."""
    port = urlsplit(stack.url).port
    context = browser.new_context(viewport=PHONE, base_url=f"http://{HOST}:{port}")
    # This phone chose "stay on plain HTTP" on the set-up page (what scanning without HTTPS is for).
    context.add_cookies([{"name": STAY_COOKIE, "value": "1", "url": f"http://{HOST}:{port}"}])
    context.set_default_timeout(20_000)
    opened = context.new_page()
    yield opened
    context.close()


def slot_of(api: httpx.Client, tray: int) -> int | None:
    slots = api.get(f"/printers/{quote(PRINTER)}/slots").json()
    return next(s["spool_id"] for s in slots if s["tray"] == tray)


def test_both_parsers_agree_on_every_label_code(page: Page, stack: WebStack) -> None:
    page.goto("/scan")
    for text, expected in CASES:
        got = page.evaluate("text => window.LayerwiseLabels.parse(text)", text)
        assert (None if got is None else [got["kind"], got["id"]]) == expected, text


def test_the_lan_page_is_not_a_secure_context(lan: Page, api: httpx.Client) -> None:
    lan.goto("/")
    assert lan.evaluate("window.isSecureContext") is False
    assert lan.evaluate("navigator.mediaDevices === undefined")
    lan.locator(f'.slot[data-printer="{PRINTER}"][data-tray="1"]').click()
    help_text = lan.locator("#camera-help")
    expect(help_text).to_contain_text("takes a photo")
    expect(help_text).to_contain_text("https://")
    expect(help_text.get_by_role("link", name="Set up this phone")).to_have_attribute("href", "/setup?next=%2F")
    file_input = lan.locator('.scan input[type="file"]')
    expect(file_input).to_have_attribute("accept", "image/*")
    expect(file_input).to_have_attribute("capture", "environment")


@pytest.mark.parametrize("photo", ["skewed.jpg", "dim.jpg", "small.jpg", "tiny.jpg"])
def test_a_photo_of_the_label_assigns_the_spool(lan: Page, api: httpx.Client, photo: str) -> None:
    api.delete(f"/printers/{quote(PRINTER)}/slots/1")  # spool 3, the label's, is then free
    lan.goto("/")
    lan.locator(f'.slot[data-printer="{PRINTER}"][data-tray="1"]').click()
    with lan.expect_file_chooser() as chooser:  # the button opens the phone's camera app (a file input)
        lan.locator('[data-action="scan"]').click()
    chooser.value.set_files(PHOTOS / photo)
    confirm = lan.locator('#scan-result [data-action="confirm"]')
    expect(confirm).to_be_visible(timeout=60_000)
    expect(lan.locator("#scan-result")).to_contain_text("#3 PLA Basic Jade White")
    print(photo, "decoded by:", lan.locator(".scan").get_attribute("data-decoded-by"))
    confirm.click()
    expect(lan.locator("#slot-dialog")).to_be_hidden()
    assert slot_of(api, 1) == 3


def test_a_photo_without_a_code_says_so(lan: Page, api: httpx.Client) -> None:
    lan.goto("/")
    lan.locator(f'.slot[data-printer="{PRINTER}"][data-tray="1"]').click()
    lan.locator('.scan input[type="file"]').set_input_files(PHOTOS / "no-code.jpg")
    expect(lan.locator("#camera-help")).to_contain_text("No QR code found in that photo", timeout=60_000)
    expect(lan.locator("#scan-result")).to_be_empty()
    assert lan.locator(".scan").get_attribute("data-decoded-by") == "none"


def test_scan_first_puts_the_spool_where_it_goes(lan: Page, api: httpx.Client) -> None:
    lan.goto("/")
    lan.locator("#scan-first").click()
    lan.wait_for_url("**/scan")
    lan.locator('.scan input[type="file"]').set_input_files(PHOTOS / "skewed.jpg")
    lan.wait_for_url("**/scan?code=*", timeout=60_000)
    expect(lan.locator("#where-title")).to_have_text("Where does this spool go?")
    expect(lan.locator("#scan-where .spool-card")).to_contain_text("#3 PLA Basic Jade White")
    # The demo seeds spool 3 in tray 1: that slot is marked, the others move it.
    here = lan.locator(f'[data-action="put-here"][data-printer="{PRINTER}"][data-tray="1"]')
    expect(here).to_be_disabled()
    expect(here).to_contain_text("Here now")
    lan.locator(f'[data-action="put-here"][data-printer="{PRINTER}"][data-tray="2"]').click()
    expect(lan.locator("#toast")).to_contain_text("Spool #3 assigned.")
    moved = lan.locator(f'[data-action="put-here"][data-printer="{PRINTER}"][data-tray="2"]')
    expect(moved).to_contain_text("Here now")  # the list reloads after the assignment
    assert slot_of(api, 2) == 3
    assert slot_of(api, 1) is None


def test_scan_first_with_a_filament_label_picks_a_spool_first(lan: Page, api: httpx.Client) -> None:
    api.delete(f"/printers/{quote(PRINTER)}/slots/3")
    lan.goto("/scan")
    lan.locator('.scan input[type="file"]').set_input_files(PHOTOS / "filament.jpg")
    lan.wait_for_url("**/scan?code=*", timeout=60_000)
    expect(lan.locator("#scan-choice h2")).to_contain_text("Which spool of filament #1?")
    picks = lan.locator("#filament-spools .spool-pick")
    expect(picks).to_have_count(2)  # PLA Basic Black: in the AMS and in the dry box
    spare = lan.locator('#filament-spools .spool-pick:not([data-spool-id="1"])')
    spare_id = int(spare.get_attribute("data-spool-id") or 0)
    spare.click()
    expect(lan.locator("#where-title")).to_be_visible()
    lan.locator(f'[data-action="put-here"][data-printer="{PRINTER}"][data-tray="3"]').click()
    expect(lan.locator("#toast")).to_contain_text(f"Spool #{spare_id} assigned.")
    assert slot_of(api, 3) == spare_id


@pytest.mark.parametrize(
    ("code", "status", "words"),
    [
        ("web+spoolman:s-3", 200, "Where does this spool go?"),
        ("WEB+SPOOLMAN:S-3", 200, "#3 PLA Basic Jade White"),
        ("https://spoolman.example.net:7912/spool/show/3", 200, "Where does this spool go?"),
        ("web+spoolman:f-1", 200, "Which spool of filament #1?"),
        ("http://192.168.1.9/filament/show/1", 200, "Which spool of filament #1?"),
        ("web+spoolman:s-999", 404, "Spoolman has no spool #999"),
        ("web+spoolman:q-3", 400, "not to a spool or a filament with a valid id"),
        ("hello there", 400, "“hello there” is not a Spoolman label"),
        ("", 400, "No code was given"),
    ],
)
def test_scan_page_parses_the_code(stack: WebStack, code: str, status: int, words: str) -> None:
    answer = httpx.get(stack.url + "/scan", params={"code": code})
    assert answer.status_code == status
    assert words in answer.text


def test_the_browser_is_offered_spoolman_links(page: Page, stack: WebStack) -> None:
    page.add_init_script("window.handlers = [];"
                         "navigator.registerProtocolHandler = (scheme, url) => window.handlers.push([scheme, url]);")
    page.goto("/scan")
    offer = page.locator("#register-handler")
    expect(offer).to_be_visible()
    offer.click()
    assert page.evaluate("window.handlers") == [["web+spoolman", "/scan?code=%s"]]
    manifest = httpx.get(stack.url + "/manifest.webmanifest").json()
    assert manifest["protocol_handlers"] == [{"protocol": "web+spoolman", "url": "/scan?code=%s"}]


def test_no_handler_offer_without_a_secure_context(lan: Page) -> None:
    lan.goto("/scan")
    expect(lan.locator("#camera-help")).to_contain_text("takes a photo")
    expect(lan.locator("#register-handler")).to_be_hidden()
