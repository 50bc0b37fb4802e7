"""What a scanned QR code means: Spoolman's spool and filament label codes.

Pure parsing, no I/O. Spoolman prints ``WEB+SPOOLMAN:S-<id>`` (spool) or
``WEB+SPOOLMAN:F-<id>`` (filament), in any case, or a URL ending in
``/spool/show/<id>`` / ``/filament/show/<id>`` when a base URL is configured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


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

_SCHEME_CODE = re.compile(r"web\+spoolman:([sf])-0*(\d{1,9})", re.IGNORECASE)
# Spoolman may sit under a sub-path behind a proxy, so only the end of the URL is fixed.
_URL_CODE = re.compile(r"https?://[^\s?#]+/(spool|filament)/show/0*(\d{1,9})/?(?:[?#]\S*)?", re.IGNORECASE)


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
