"""Extracting the messages people read (templates, server code, static/*.js) and keeping the catalogs in step:
``python -m server.web.i18n extract`` (documented in docs/CONTRIBUTING.md). The same extraction tells the
pages which messages the scripts need (``script_msgids``) and lets the tests find untranslated ones.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from server import __version__
from server.assets import asset_root
from server.web.i18n import LANGUAGES, SOURCE, po_path

_PACKAGE = Path(__file__).resolve().parent.parent  # server/
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
_PLACEHOLDER = re.compile(r"%\((\w+)\)[sdfr]")
_FIXED_DATE = datetime(2026, 12, 1, tzinfo=UTC)
HEADER = ("# The Layerwise web app's messages (server/web/i18n.py).\n"
          "# Update: `python -m server.web.i18n extract` (docs/CONTRIBUTING.md); then translate the empty msgstr.\n#")


Message = str | tuple[str, str]  # a msgid, or ngettext's (singular, plural)


def _extract(root: Path, method_map: list[tuple[str, str]], prefix: str) -> Iterable[tuple[Message, str, int]]:
    """(msgid, file, line) of every message under ``root``."""
    found = extract_from_dir(str(root), method_map, keywords=KEYWORDS, strip_comment_tags=True)
    for filename, lineno, message, _comments, _context in found:
        if isinstance(message, tuple):
            message = (message[0], message[1])
        if message and message[0]:
            yield message, f"{prefix}/{filename}", lineno


def sources() -> list[tuple[Message, str, int]]:
    """Every message people read, where it is written."""
    assets = asset_root()
    return [
        *_extract(assets / "templates", [("**.html", "jinja2.ext:babel_extract")], "templates"),
        # The web pages' code, and the billing words pages show (``reason_in_words`` takes a page's gettext).
        *_extract(_PACKAGE, [("web/**.py", "python"), ("billing/attention.py", "python"), ("colours.py", "python")],
                  "server"),
        *_extract(assets / "static", [("*.js", "javascript")], "static"),
    ]


@cache
def script_msgids() -> tuple[str, ...]:
    """The messages static/*.js shows (their translations go to the page as JSON)."""
    found = _extract(asset_root() / "static", [("*.js", "javascript")], "static")
    return tuple(dict.fromkeys(m for m, _f, _l in found if isinstance(m, str)))


def _new_catalog(locale: str | None = None) -> Catalog:
    # Fixed dates and header: re-extracting changes only what changed (no churn, no merge conflicts).
    return Catalog(locale=locale, project="Layerwise", version=__version__, charset="utf-8", fuzzy=False,
                   creation_date=_FIXED_DATE, revision_date=_FIXED_DATE, copyright_holder="Layerwise contributors",
                   header_comment=HEADER)


def template_catalog() -> Catalog:
    catalog = _new_catalog()
    for message, filename, lineno in sources():
        text = message if isinstance(message, str) else " ".join(message)
        flags = ("python-format",) if _PLACEHOLDER.search(text) else ()
        catalog.add(message, locations=[(filename, lineno)], flags=flags)
    return catalog


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def update(lang: str, template: Catalog) -> Catalog:
    """The catalog of ``lang`` brought in step with ``template``: new messages added (empty), vanished ones
    dropped, changed ones kept as fuzzy for a translator to check."""
    path = po_path(lang)
    if path.exists():
        with path.open("rb") as po:
            catalog = read_po(po, locale=lang)
    else:
        catalog = _new_catalog(lang)
    catalog.update(template, no_fuzzy_matching=lang == SOURCE)  # English: the msgids are the text
    catalog.obsolete.clear()  # git keeps history: an obsolete entry would only be noise
    catalog.fuzzy = False
    catalog.revision_date = _FIXED_DATE
    catalog.header_comment = HEADER
    catalog.version = __version__
    catalog.last_translator = "Layerwise contributors"
    return catalog


def write(lang: str, catalog: Catalog) -> None:
    path = po_path(lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as po:
        # No line numbers: an edit elsewhere in a template does not touch every catalog.
        write_po(po, catalog, width=120, sort_output=False, include_previous=True, include_lineno=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.web.i18n",
                                     description="Re-extract the web pages' messages and update the catalogs.")
    parser.add_argument("command", choices=["extract"])
    parser.parse_args(argv)
    template = template_catalog()
    for lang in LANGUAGES:
        catalog = update(lang, template)
        write(lang, catalog)
        if lang == SOURCE:
            continue
        missing = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
        print(f"{lang}: {len(template)} messages, {len(missing)} to translate")
    return 0
