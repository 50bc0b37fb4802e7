"""Accessibility checks for the browser tests: axe-core's serious and critical findings, horizontal
scrolling and tap-target sizes, each returned as plain words a failing assertion can show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core-4.14.1.min.js"
BLOCKING = ("serious", "critical")
NARROW = {"width": 360, "height": 740}
WIDE = {"width": 1280, "height": 900}
MIN_TARGET = 44  # CSS px, WCAG 2.5.5 (AAA) and Apple's and Google's guidance for a thumb
# Controls a thumb aims at. Links inside running text are exempt (WCAG 2.5.8's inline exception).
TARGETS = ("button, a.button, input:not([type=hidden]), select, summary, .crumbs a, .page-links a, "
           ".pager a, .brand, .skip:focus")


def context(browser: Browser, base_url: str, viewport: dict[str, int], scheme: str, **extra: Any) -> BrowserContext:
    """A browser context with axe-core loaded into every page (an init script: the CSP does not apply
    to it) and no animations (axe reads colours mid-fade wrongly)."""
    made = browser.new_context(viewport=viewport, base_url=base_url, color_scheme=scheme,  # type: ignore[arg-type]
                               reduced_motion="reduce", **extra)
    made.set_default_timeout(15_000)
    made.add_init_script(path=str(AXE))
    return made


_RUN = """async (include) => {
  const result = await axe.run(include ? {include: [include]} : document,
                               {resultTypes: ["violations"], runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                                                       "wcag22aa", "best-practice"]});
  return result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
                                        nodes: v.nodes.map((n) => n.target.join(" ") + ": " + n.failureSummary)}));
}"""


def violations(page: Any, include: str | None = None) -> list[str]:
    """axe-core's serious and critical violations on the page (or inside ``include``), one line each."""
    found = page.evaluate(_RUN, include)
    return [f"{v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["nodes"][:6])
            for v in found if v["impact"] in BLOCKING]


def overflow(page: Any) -> int:
    """How many CSS px the page scrolls sideways (0: it fits its width)."""
    return int(page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth"))


_SMALL = """([selector, least]) => Array.from(document.querySelectorAll(selector)).filter((el) => {
  if (el.closest("dialog:not([open]), [hidden]")) return false;
  const r = el.getBoundingClientRect();
  if (!r.width || !r.height) return false; // not shown
  const style = getComputedStyle(el);
  if (style.visibility === "hidden" || style.display === "none") return false;
  return r.width < least - 0.5 || r.height < least - 0.5;
}).map((el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${[...el.classList].join(".")} ` +
  `"${(el.textContent || el.value || el.getAttribute("aria-label") || "").trim().slice(0, 30)}" ` +
  `${Math.round(el.getBoundingClientRect().width)}x${Math.round(el.getBoundingClientRect().height)}`)"""


def small_targets(page: Any, selector: str = TARGETS) -> list[str]:
    """Shown controls smaller than 44x44 CSS px."""
    return list(page.evaluate(_SMALL, [selector, MIN_TARGET]))
