"""The README's runout forecast screenshots: ``python -m tests.web.forecast_screenshot`` (repository on
PYTHONPATH). Never run by the test suite.

Starts the demo's stack in a temporary folder, leaves 3 g on spool 1 (tray A1) and prints "Layerwise demo"
to layer 2: the printer card's warning strip (``forecast-card-phone.png``); then asks "Will it last?" for
tests/fixtures' 2-colour P1S file with 10 g on spool 3 (tray A2) (``forecast-file-phone.png``). Both at
360 px in Debian's Chromium.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from server.sim.demo import DEMO_FILE, DEMO_MAPPING
from tests.web.screenshots import ARGS, CHROMIUM, README_SHOTS
from tests.web.web_stack import PRINTER, WebStack

FILE = Path(__file__).resolve().parents[1] / "fixtures" / "print-files" / "p1s-2colour-bs2.05.gcode.3mf"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.web.forecast_screenshot",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=README_SHOTS, help="where the screenshots go")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="layerwise-shots-") as tmp:
        stack = WebStack(Path(tmp)).start()
        try:
            runtime, printer = stack.runtime, stack.printer
            assert runtime is not None and printer is not None

            async def leave(spool_id: int, grams: float) -> None:
                stack.store.update_spool(spool_id, {"remaining_weight": grams})
                runtime.spools.invalidate(spool_id)

            stack.call(lambda: leave(1, 3.0))
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                context = browser.new_context(viewport={"width": 360, "height": 780}, base_url=stack.url,
                                              reduced_motion="reduce")
                page = context.new_page()
                stack.call(lambda: printer.start_print(DEMO_FILE, ams_mapping=DEMO_MAPPING,
                                                       subtask_name="Layerwise demo"))
                stack.call(lambda: printer.goto_layer(2))
                page.goto("/")
                strip = page.locator(f'[data-printer-card="{PRINTER}"] .forecast[data-forecast-status="runs_out"]')
                expect(strip.first).to_be_visible(timeout=30_000)
                page.screenshot(path=args.out / "forecast-card-phone.png")
                stack.call(lambda: leave(3, 10.0))
                page.goto("/forecast")
                page.set_input_files("#forecast-file", FILE)
                page.click("#forecast-form button[type=submit]")
                expect(page.locator("#forecast-result .forecast").first).to_be_visible(timeout=30_000)
                page.screenshot(path=args.out / "forecast-file-phone.png", full_page=True)
                browser.close()
        finally:
            stack.stop()
    print(f"screenshots written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
