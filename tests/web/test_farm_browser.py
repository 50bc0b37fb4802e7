"""In Chromium: the farm view with 16 virtual printers (issue 15): the start page becomes the farm view,
filters and search, a row updated live as its printer starts printing (rows asked for together, never a
card per printer), a printer going offline, and a row opening the printer's full card."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Request, expect
from pydantic import SecretStr
from web_stack import PHONE, WebStack

from server.config import PrinterConfig, ServerConfig, Settings, SpoolmanConfig
from server.runtime import Runtime
from server.sim.demo_print import demo_3mf
from server.sim.printer import VirtualPrinter
from server.sim.spoolman import SpoolmanStandin
from server.web.app import create_app
from server.web.embedded import EmbeddedServer
from server.web.pages import FARM_VIEW_FROM

pytestmark = pytest.mark.browser
COUNT = FARM_VIEW_FROM + 3
CODE = "f4rm1234"
FILE = "/cache/farm-demo.gcode.3mf"


def name(index: int) -> str:
    return f"Farm {index:02d}"


class FarmStack(WebStack):
    """COUNT virtual printers (P1S), the Spoolman stand-in and Layerwise, on the stack's own loop."""

    printers: list[VirtualPrinter]

    async def _main(self) -> None:
        import asyncio

        self._stop = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            spoolman = await stack.enter_async_context(SpoolmanStandin(self.store))
            self.printers = []
            for index in range(COUNT):
                printer = await stack.enter_async_context(VirtualPrinter(
                    serial=f"01F00B{index:09d}", access_code=CODE, model="P1S",
                    cert_dir=self.folder / "certs" / str(index)))
                printer.add_file(FILE, demo_3mf(layers=20))
                self.printers.append(printer)
            configs = tuple(PrinterConfig(name=name(i), host=p.host, serial=p.serial, access_code=SecretStr(CODE),
                                          mqtt_port=p.mqtt_port, ftps_port=p.ftps_port, model="P1S",
                                          ca_file=p.ca_cert_path) for i, p in enumerate(self.printers))
            settings = Settings(server=ServerConfig(host="127.0.0.1", port=1, data_dir=self.folder / "data"),
                                spoolman=SpoolmanConfig(url=spoolman.url), printers=configs)
            runtime = Runtime.build(settings)
            web = EmbeddedServer(create_app(runtime, manage_lifespan=False), "127.0.0.1", 0, name="layerwise")
            await runtime.start()
            try:
                await web.start()
                self.url, self.runtime, self.web, self.spoolman = web.url, runtime, web, spoolman
                await self._until(lambda: all(t.online for t in runtime.printers.values()), "every printer online",
                                  timeout=60)
                self._ready.set()
                await self._stop.wait()
            finally:
                await web.stop()
                await runtime.stop()


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FarmStack]:
    running = FarmStack(Path(tmp_path_factory.mktemp("farm-stack")))
    running.start()
    yield running
    running.stop()


@pytest.fixture
def farm_page(browser: Browser, farm: FarmStack) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, base_url=farm.url)
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def row(page: Page, index: int):
    return page.locator(f'[data-farm-row="{name(index)}"]')


def test_the_start_page_of_a_farm_is_the_farm_view(farm_page: Page) -> None:
    farm_page.goto("/")
    expect(farm_page).to_have_url(re.compile(r"/farm"))
    expect(farm_page.locator("[data-farm-row]")).to_have_count(COUNT)
    expect(farm_page.locator('[data-farm-count="all"]')).to_have_text(str(COUNT))
    farm_page.goto("/?view=cards")  # the cards stay one tap away
    expect(farm_page.locator("[data-printer-card]")).to_have_count(COUNT)


def test_a_row_follows_its_printer_live_with_rows_asked_for_together(farm_page: Page, farm: FarmStack) -> None:
    asked: list[str] = []

    def note(request: Request) -> None:
        if "/farm/rows" in request.url or "/card" in request.url:
            asked.append(request.url)

    farm_page.on("request", note)
    farm_page.goto("/farm")
    expect(farm_page.locator("#live")).to_have_attribute("data-state", "live")
    printer = farm.printers[3]
    farm.call(lambda: printer.start_print(FILE, ams_mapping=[0, 1, 2, 3], task_id="300"))
    farm.call(lambda: printer.advance(2))
    expect(row(farm_page, 3)).to_have_attribute("data-state", "printing")
    expect(row(farm_page, 3)).to_contain_text("layer 2")
    # Filters work on live rows: "Printing" shows the one printing printer.
    farm_page.get_by_role("button", name=re.compile("^Printing")).click()
    expect(farm_page.locator("[data-farm-row]:visible")).to_have_count(1)
    expect(farm_page.locator('[data-farm-count="printing"]')).to_have_text("1")
    assert asked and all("/farm/rows" in url for url in asked)  # never a card per printer
    farm.call(lambda: printer.cancel())


def test_search_and_a_printer_going_offline(farm_page: Page, farm: FarmStack) -> None:
    farm_page.goto("/farm")
    farm_page.get_by_label("Search printers").fill("farm 07")
    expect(farm_page.locator("[data-farm-row]:visible")).to_have_count(1)
    expect(row(farm_page, 7)).to_be_visible()
    farm_page.get_by_label("Search printers").fill("")
    printer = farm.printers[9]
    farm.call(printer.stop_broker)
    try:
        expect(row(farm_page, 9)).to_have_attribute("data-state", "offline")
        farm_page.get_by_role("button", name=re.compile("^Offline")).click()
        expect(farm_page.locator("[data-farm-row]:visible")).to_have_count(1)
        farm_page.get_by_role("button", name=re.compile("^Needs attention")).click()
        expect(row(farm_page, 9)).to_be_visible()
        expect(row(farm_page, 9)).to_contain_text("offline")
    finally:
        farm.call(printer.start_broker)


def test_a_row_opens_the_printers_full_card(farm_page: Page) -> None:
    farm_page.goto("/farm")
    row(farm_page, 5).get_by_role("link", name=name(5)).click()
    expect(farm_page.locator(f'[data-printer-card="{name(5)}"]')).to_be_visible()
    expect(farm_page.locator(".slot")).not_to_have_count(0)
