"""The app in the browser's language, in Chromium: a German browser (locale de-DE) gets the dashboard, the
slot dialog and the scripts' words in German, with German numbers; the footer's picker switches to French."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from test_pwa_browser import open_dialog, tile
from web_stack import PHONE, PRINTER, WebStack

pytestmark = pytest.mark.browser


@pytest.fixture
def german(browser: Browser, stack: WebStack) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, base_url=stack.url, locale="de-DE")
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_a_german_browser_gets_german_pages_and_dialogs(german: Page, api: httpx.Client) -> None:
    german.goto("/")
    expect(german.locator("html")).to_have_attribute("lang", "de")
    links = german.locator("nav.page-links")
    expect(links).to_contain_text("Scannen")
    expect(links).to_contain_text("Aufträge")
    card = german.locator(f'[data-printer-card="{PRINTER}"]')
    expect(card.locator(".status")).to_have_text("Online")
    expect(tile(german, 0).locator(".remaining")).to_have_text(re.compile(r"^noch \d+ g$"))
    expect(german.locator("#live")).to_have_attribute("data-state", "live")
    # The scripts' words come from the page's JSON block.
    assert german.evaluate("window.layerwiseText('Reconnecting…')") == "Verbinde neu…"
    assert german.evaluate("window.layerwiseText('Not done: %(detail)s', {detail: 'x'})") == "Nicht erledigt: x"

    open_dialog(german, 0)
    dialog = german.locator("#slot-dialog")
    expect(dialog.locator("label[for=spool-search]")).to_have_text("Spule finden")
    expect(dialog.locator("#spool-search")).to_have_attribute("placeholder", "ID, Name, Material, Hersteller, Farbe")
    expect(dialog.locator("[data-action=unassign]")).to_have_text("Zuweisung aufheben")
    expect(dialog.locator("[data-action=scan]")).to_have_text("QR-Code scannen")
    expect(dialog.locator("[data-action=close]").first).to_have_attribute("aria-label", "Schließen")
    expect(dialog.locator(".spool-list")).to_contain_text("In diesem Schacht")

    # Unassigning answers with a German toast, made by the server for this request.
    dialog.locator("[data-action=unassign]").click()
    expect(german.locator("#toast")).to_have_text("Spulenzuweisung aufgehoben.")
    expect(tile(german, 0).locator(".spool-name")).to_have_text("Keine Spule zugewiesen")


def test_the_footer_picker_switches_the_language(german: Page, api: httpx.Client) -> None:
    german.goto("/")  # sets this browser's CSRF cookie; every page's picker then posts it
    german.goto("/jobs")
    expect(german.locator(".language-form button")).to_be_hidden()  # with scripts a choice applies at once
    german.locator("#language").select_option("fr")
    expect(german.locator("html")).to_have_attribute("lang", "fr")
    expect(german.locator("h1")).to_have_text("Tâches")
    german.goto("/")
    expect(german.locator("nav.page-links")).to_contain_text("Tâches")  # kept for this browser
