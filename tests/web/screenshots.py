"""Make the README's screenshots: ``python -m tests.web.screenshots`` (with the repository on PYTHONPATH).

Never run by the test suite (a test run writes nothing into the repository). It starts the demo's stack
(virtual X1C + Spoolman stand-in + Layerwise) in a temporary folder, prints "Layerwise demo" to layer 14
and photographs the app in Debian's Chromium at phone size. ``--review DIR`` also writes every page at
360 and 390 px, light and dark, into DIR for a person to look at.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from server.sim.demo import DEMO_FILE, DEMO_MAPPING
from tests.web.web_stack import PRINTER, WebStack

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
README_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SCAN_FIRST = "/scan?code=web%2Bspoolman%3As-4"  # a label scanned with no slot open: where does it go?


def _dashboard_under_way(page: Page, stack: WebStack) -> None:
    printer = stack.printer
    assert printer is not None
    stack.call(lambda: printer.start_print(DEMO_FILE, ams_mapping=DEMO_MAPPING, subtask_name="Layerwise demo"))
    stack.call(lambda: printer.goto_layer(14))
    page.goto("/")
    job = page.locator(f'[data-printer-card="{PRINTER}"] .job')
    expect(job.locator(".layer")).to_contain_text("layer 14 of", timeout=30_000)
    expect(job.locator("img.plate")).to_be_visible(timeout=30_000)


def _open_slot(page: Page, tray: int) -> None:
    page.locator(f'.slot[data-printer="{PRINTER}"][data-tray="{tray}"]').click()
    expect(page.locator("#slot-dialog")).to_be_visible()
    expect(page.locator(".spool-pick").first).to_be_visible()
    expect(page.locator("#dialog-body .htmx-added")).to_have_count(0)


def _review(page: Page, stack: WebStack, out: Path) -> None:
    """Every page at two phone widths, light and dark, for a person to look at."""
    printer = stack.printer
    assert printer is not None
    stack.call(printer.finish)
    page.goto("/")
    expect(page.locator("[data-end-of-print]")).to_be_visible(timeout=30_000)
    pages = {"dashboard": "/", "jobs": "/jobs", "attention": "/attention", "connect": "/connect", "scan": SCAN_FIRST,
             "job": page.locator("[data-end-of-print] a").get_attribute("href") or "/jobs"}
    for width in (360, 390):
        page.set_viewport_size({"width": width, "height": 800})
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
            for name, url in pages.items():
                page.goto(url)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=out / f"{name}-{width}-{scheme}.png", full_page=True)
            page.goto("/")
            _open_slot(page, 1)
            page.screenshot(path=out / f"slot-dialog-{width}-{scheme}.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.web.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=README_SHOTS, help="where the README's screenshots go")
    parser.add_argument("--review", type=Path, help="also write every page at 360/390 px, light and dark, here")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="layerwise-shots-") as tmp:
        stack = WebStack(Path(tmp)).start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                context = browser.new_context(viewport={"width": 390, "height": 844},
                                              base_url=stack.url, reduced_motion="reduce")
                page = context.new_page()
                _dashboard_under_way(page, stack)
                page.screenshot(path=args.out / "dashboard-phone.png", full_page=True)
                _open_slot(page, 1)
                page.screenshot(path=args.out / "slot-dialog-phone.png")
                page.keyboard.press("Escape")
                page.goto(SCAN_FIRST)
                expect(page.locator("#where-title")).to_be_visible()
                page.screenshot(path=args.out / "scan-first-phone.png")
                if args.review is not None:
                    args.review.mkdir(parents=True, exist_ok=True)
                    _review(page, stack, args.review)
                browser.close()
        finally:
            stack.stop()
    print(f"screenshots written to {args.out}" + (f" and {args.review}" if args.review else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
