"""Spoolman's list-query rules (filters, sorting, paging) as pure functions over rendered items.

Spoolman 0.26 documents its `GET /spool`, `/filament` and `/vendor` filters as:
- text filters: partial, case-insensitive terms separated by commas (OR); an empty term matches
  items without a value; a term in double quotes must match exactly;
- id filters: exact ids separated by commas; `-1` for a vendor id means "no vendor";
- `sort`: `field:direction` items separated by commas, fields may be dotted (`filament.name`);
- `offset` only applies when a `limit` is set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Item = dict[str, Any]


class QueryError(ValueError):
    """A query parameter Spoolman would reject (the app answers 422)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def dotted(item: Item, path: str) -> Any:
    """The value at a dotted path (`filament.vendor.name`), None when any step is missing."""
    value: Any = item
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def text_matches(value: str | None, spec: str) -> bool:
    for term in spec.split(","):
        if term == "":
            if not value:
                return True
        elif len(term) >= 2 and term.startswith('"') and term.endswith('"'):
            if value is not None and value == term[1:-1]:
                return True
        elif value is not None and term.lower() in value.lower():
            return True
    return False


def parse_ids(param: str, spec: str) -> set[int]:
    try:
        return {int(part) for part in spec.split(",")}
    except ValueError:
        raise QueryError(param, f"String should match pattern '^-?\\d+(,-?\\d+)*$': {spec!r}") from None


def text_filter(path: str, spec: str) -> Callable[[Item], bool]:
    return lambda item: text_matches(dotted(item, path), spec)


def id_filter(path: str, ids: set[int], *, none_id: int | None = None) -> Callable[[Item], bool]:
    """Match an exact id at `path`; `none_id` (Spoolman uses -1) matches a missing parent."""

    def match(item: Item) -> bool:
        value = dotted(item, path)
        if value is None:
            return none_id is not None and none_id in ids
        return value in ids

    return match


def sort_items(items: list[Item], sort: str | None) -> list[Item]:
    ordered = sorted(items, key=lambda item: item["id"])
    if not sort:
        return ordered
    specs = [part.split(":", 1) for part in sort.split(",") if part]
    # Stable sorts applied from the last key to the first give a multi-key order.
    for spec in reversed(specs):
        field = spec[0]
        descending = len(spec) > 1 and spec[1].lower() == "desc"
        ordered.sort(key=lambda item, f=field: _sort_key(dotted(item, f)), reverse=descending)
    return ordered


def _sort_key(value: Any) -> tuple[int, Any]:
    # None sorts first; numbers before text so mixed columns never compare str with float.
    if value is None:
        return (0, 0)
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value).lower())


def page(items: Sequence[Item], limit: int | None, offset: int) -> list[Item]:
    if limit is None:
        return list(items)
    return list(items[offset : offset + limit])
