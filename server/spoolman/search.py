"""Free-text spool search, done client-side.

Spoolman 0.26's `GET /spool` has only per-field filters (`filament.name`, `filament.material`,
`filament.vendor.name`, `location`, `lot_nr`), each one a separate AND-ed condition, and its
`GET /search` endpoint caps results at 100 per category without paging. To search "the way a
person types" over id, filament name, material, vendor and colour with honest paging, the client
reads the spools (in pages) and filters them here: every whitespace-separated term must match
one of those fields; a purely numeric term also matches the spool id exactly.
"""

from __future__ import annotations

from server.spoolman.models import Spool


def spool_haystack(spool: Spool) -> list[str]:
    filament = spool.filament
    fields = [
        filament.name,
        filament.material,
        filament.vendor.name if filament.vendor else None,
        filament.color_hex,
        filament.multi_color_hexes,
        spool.location,
        spool.lot_nr,
        spool.comment,
    ]
    return [field.lower() for field in fields if field]


def spool_matches(spool: Spool, text: str) -> bool:
    terms = text.lower().split()
    if not terms:
        return True
    haystack = spool_haystack(spool)
    return all(_term_matches(spool, haystack, term) for term in terms)


def _term_matches(spool: Spool, haystack: list[str], term: str) -> bool:
    if term.isdigit() and int(term) == spool.id:
        return True
    term = term.removeprefix("#")  # "#ff0000" means the colour FF0000
    return any(term in field for field in haystack)
