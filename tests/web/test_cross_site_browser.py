"""In real Chromium: a page on another origin (127.0.0.2) cannot change anything with a form or a no-cors
fetch, even while the user has the dashboard open (its cookie set); and the pages run under the CSP."""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect
from test_pwa_browser import open_dialog, tile
from web_stack import PRINTER, WebStack

pytestmark = pytest.mark.browser
NEW_TAG = "CAFEF00D00112233445566778899AABB"


class Foreign:
    """Serves one attacking page from 127.0.0.2: another site to the browser, same loopback to the network."""

    def __init__(self) -> None:
        self.page = ""
        foreign = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server calls it by this name
                body = foreign.page.encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.url = f"http://127.0.0.2:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def foreign() -> Iterator[Foreign]:
    running = Foreign()
    yield running
    running.server.shutdown()
    running.server.server_close()


def attack(page: Page, foreign: Foreign, target: str, body: dict[str, object]) -> int:
    """Open the foreign page: it fires no-cors fetches (JSON as text/plain, and a form body) at ``target``,
    then submits a text/plain form whose body is the same JSON. Returns the form's answer's status."""
    raw = json.dumps(body)
    name, value = raw[:-1] + ', "x": "', '"}'  # a text/plain form sends name=value: valid JSON again
    foreign.page = f"""<!doctype html><html><body>
<form id="f" method="post" enctype="text/plain" action="{html.escape(target)}">
<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}"></form>
<script>
const sent = Promise.all([
  fetch({json.dumps(target)}, {{method: "POST", mode: "no-cors", credentials: "include",
    headers: {{"content-type": "text/plain"}}, body: {json.dumps(raw)}}}),
  fetch({json.dumps(target.replace('/api/v1/', '/'))}, {{method: "POST", mode: "no-cors",
    credentials: "include", body: new URLSearchParams({{spool_id: "5", use: "tag"}})}}),
]).then(() => {{ document.title = "sent"; }});
</script></body></html>"""
    page.goto(foreign.url)
    expect(page).to_have_title("sent")  # both requests went out (opaque answers)
    # Wait for the form's navigation to finish, not only its answer: the next goto would interrupt it.
    with page.expect_navigation(url=target) as navigation:
        page.locator("#f").evaluate("form => form.submit()")
    answer = navigation.value
    assert answer is not None
    return answer.status


def test_a_foreign_page_cannot_remember_a_tag_or_resolve_a_conflict(
    page: Page, api: httpx.Client, stack: WebStack, foreign: Foreign
) -> None:
    printer = stack.printer
    assert printer is not None
    base = f"{stack.url}/api/v1/printers/{quote(PRINTER)}/slots"
    # A tray with a tag no spool carries and spool 5 picked by hand: the page would offer to remember it.
    stack.call(lambda: printer.push_tray_change(0, 2, tray_uuid=NEW_TAG))
    assert api.put(f"/printers/{quote(PRINTER)}/slots/2", json={"spool_id": 5, "move": True}).status_code == 200
    # Spool 4 picked by hand for tray A1, whose tag belongs to spool 1: a conflict the user must settle.
    assert api.put(f"/printers/{quote(PRINTER)}/slots/0", json={"spool_id": 4, "move": True}).status_code == 200
    stack.call(printer.drop_connections)
    deadline = time.monotonic() + 20
    while not api.get(f"/printers/{quote(PRINTER)}/rfid/conflicts").json() and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        page.goto("/")  # the user has the dashboard open: the CSRF cookie is set in this browser
        expect(tile(page, 2)).to_have_attribute("data-spool", "5")
        statuses = [attack(page, foreign, f"{base}/2/rfid/remember", {"spool_id": 5}),
                    attack(page, foreign, f"{base}/0/rfid/resolve", {"use": "tag"})]
        assert "bambu_tray_uuid" not in stack.store.get_spool(5).get("extra", {})  # the tag stayed unknown
        slots = {s["tray"]: s["spool_id"] for s in api.get(f"/printers/{quote(PRINTER)}/slots").json()}
        assert slots[0] == 4 and slots[2] == 5
        assert [c["tray"] for c in api.get(f"/printers/{quote(PRINTER)}/rfid/conflicts").json()] == [0]
        assert statuses == [403, 403]
    finally:
        stack.call(lambda: printer.push_tray_change(0, 2, tray_uuid="0" * 32))


def test_pages_run_under_the_content_security_policy(page: Page, api: httpx.Client) -> None:
    refused: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    page.on("console", note)
    for path in ("/", "/jobs", "/attention", "/spools/1/ledger", "/connect", "/api/v1/schema"):
        page.goto(path)
        page.wait_for_load_state("load")
    page.goto("/")
    open_dialog(page, 1)  # htmx loads the dialog; app.js wires it
    page.get_by_label("Find a spool").fill("polyterra")
    expect(page.locator(".spool-pick").first).to_be_visible()
    assert refused == []
