"""What a scanned QR code means: Spoolman's spool and filament label codes.

Pure parsing, no I/O. Spoolman prints ``WEB+SPOOLMAN:S-<id>`` (spool) or
``WEB+SPOOLMAN:F-<id>`` (filament), in any case, or a URL ending in
``/spool/show/<id>`` / ``/filament/show/<id>`` when a base URL is configured.
``static/labels.js`` is the browser's copy of ``parse_label``; both are tested
with the same table of cases (``tests/web/label_codes.json``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.web.i18n import Translator, english


@dataclass(frozen=True)
class SpoolCode:
    spool_id: int


@dataclass(frozen=True)
class FilamentCode:
    filament_id: int


@dataclass(frozen=True)
class NotALabel:
    text: str


Label = SpoolCode | FilamentCode | NotALabel

# [0-9], not \d: Python's \d also takes other scripts' digits, which the browser's copy does not.
_SCHEME_CODE = re.compile(r"web\+spoolman:([sf])-0*([0-9]{1,9})", re.IGNORECASE)
# Spoolman may sit under a sub-path behind a proxy, so only the end of the URL is fixed.
_URL_CODE = re.compile(
    r"https?://[^\s?#]+/(spool|filament)/show/0*([0-9]{1,9})/?(?:[?#]\S*)?", re.IGNORECASE)
MAX_CODE = 2000  # a QR code holds at most ~4300 characters; a label's code is a few dozen


def parse_label(text: str) -> Label:
    """The spool or filament a label names; ``NotALabel`` for anything else."""
    code = text.strip()
    if match := _SCHEME_CODE.fullmatch(code):
        kind, number = match.group(1).lower(), int(match.group(2))
    elif match := _URL_CODE.fullmatch(code):
        kind, number = match.group(1).lower()[0], int(match.group(2))
    else:
        return NotALabel(text)
    if number == 0:  # Spoolman ids start at 1
        return NotALabel(text)
    return SpoolCode(number) if kind == "s" else FilamentCode(number)


def label_problem(text: str, gettext: Translator = english) -> str:
    """Why ``text`` is not a label, in words for the person who scanned it (for a ``NotALabel``), in the
    language of ``gettext`` (a page's ``gettext_for(request)``)."""
    _ = gettext
    expected = _("Spoolman's labels read web+spoolman:s-<id> (a spool), web+spoolman:f-<id> (a filament) "
                 "or a link ending in /spool/show/<id>.")
    code = text.strip()
    if not code:
        return _("No code was given. Scan the QR code on a Spoolman label.")
    if len(code) > MAX_CODE:
        return _("That code is %(n)s characters long: not a Spoolman label.", n=len(code)) + " " + expected
    shown = code if len(code) <= 80 else code[:77] + "…"
    if code.lower().startswith("web+spoolman:"):
        return _("“%(code)s” is a Spoolman link, but not to a spool or a filament with a valid id.",
                 code=shown) + " " + expected
    return _("“%(code)s” is not a Spoolman label.", code=shown) + " " + expected
