"""Decoding phone photos of labels in Chromium, one command: ``python -m bench.scan``.

The page's own decoder (``static/scan.js``: the passes over a photo, the vendored jsQR) runs on each
photo in ``tests/fixtures/label-photos/`` in Debian's Chromium; it prints the pass that found the code
and the median time of a few runs. Exits 0 when every label's photo decodes to its code and the photo
without one decodes to nothing. No server: Playwright answers the page's requests from ``static/``.
"""

from __future__ import annotations

import base64
import statistics
import sys
from pathlib import Path

from playwright.sync_api import Route, sync_playwright

from server.assets import static_dir

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "tests" / "fixtures" / "label-photos"
EXPECTED = {"skewed.jpg": "WEB+SPOOLMAN:S-3", "dim.jpg": "WEB+SPOOLMAN:S-3", "small.jpg": "WEB+SPOOLMAN:S-3",
            "tiny.jpg": "WEB+SPOOLMAN:S-3", "filament.jpg": "WEB+SPOOLMAN:F-1", "no-code.jpg": None}
ORIGIN = "http://bench.invalid"
CHROMIUM = "/usr/bin/chromium"
PAGE = """<!doctype html><html><body><script src="/static/labels.js"></script>
<script>window.htmx = {};</script><script src="/static/scan.js"></script></body></html>"""
DECODE = """async ([data, runs]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const file = new File([bytes], "photo.jpg", { type: "image/jpeg" });
  const times = []; let found = null;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    found = await window.LayerwiseScan.decodePhoto(file);
    times.push(performance.now() - started);
  }
  return { found, times };
}"""


def serve(route: Route) -> None:
    path = route.request.url.removeprefix(ORIGIN).split("?")[0]
    if path.startswith("/static/"):
        route.fulfill(path=str(static_dir() / path.removeprefix("/static/")), content_type="text/javascript")
    else:
        route.fulfill(body=PAGE, content_type="text/html")


def main(runs: int = 3) -> int:
    failures = 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.route("**/*", serve)
        page.goto(ORIGIN + "/")
        print(f"{'photo':<14} {'size':>10} {'code':<18} {'pass':<22} {'median ms':>9}")
        for name, expected in EXPECTED.items():
            data = base64.b64encode((PHOTOS / name).read_bytes()).decode()
            answer = page.evaluate(DECODE, [data, runs])
            found = answer["found"]
            text, found_by = (found["text"], found["pass"]) if found else (None, "none")
            size = f"{(PHOTOS / name).stat().st_size // 1024} KB"
            ok = text == expected
            failures += not ok
            print(f"{name:<14} {size:>10} {text or '-':<18} {found_by:<22} {statistics.median(answer['times']):>9.0f}"
                  f"{'' if ok else '  WRONG: expected ' + str(expected)}")
        browser.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
