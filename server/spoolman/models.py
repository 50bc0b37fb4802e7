"""Typed views of Spoolman's vendor, filament and spool items.

Unknown fields are kept (`extra="allow"`) so a newer Spoolman never breaks parsing, and fields
Spoolman may leave out default to None.
"""

from __future__ import annotations

import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class _Item(BaseModel):
    model_config = ConfigDict(extra="allow")

    def extra_value(self, key: str) -> Any:
        """The decoded value of extra field `key` (Spoolman stores each as JSON text), None if unset."""
        extra: dict[str, str] = getattr(self, "extra", {})
        raw = extra.get(key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw  # written by something that skipped the JSON encoding: show it as stored


class Vendor(_Item):
    id: int
    name: str
    registered: str | None = None
    comment: str | None = None
    empty_spool_weight: float | None = None
    external_id: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)


class Filament(_Item):
    id: int
    name: str | None = None
    vendor: Vendor | None = None
    material: str | None = None
    density: float
    diameter: float
    weight: float | None = None
    spool_weight: float | None = None
    color_hex: str | None = None
    multi_color_hexes: str | None = None
    multi_color_direction: str | None = None
    article_number: str | None = None
    price: float | None = None
    comment: str | None = None
    registered: str | None = None
    external_id: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)


class Spool(_Item):
    id: int
    filament: Filament
    remaining_weight: float | None = None
    used_weight: float = 0.0
    initial_weight: float | None = None
    spool_weight: float | None = None
    remaining_length: float | None = None
    used_length: float = 0.0
    archived: bool = False
    location: str | None = None
    lot_nr: str | None = None
    comment: str | None = None
    price: float | None = None
    extra: dict[str, str] = Field(default_factory=dict)
    registered: str | None = None
    first_used: str | None = None
    last_used: str | None = None


class ExtraField(_Item):
    key: str
    name: str
    field_type: str
    entity_type: str
    order: int = 0
    unit: str | None = None
    default_value: str | None = None
    choices: list[str] | None = None
    multi_choice: bool | None = None


T = TypeVar("T", bound=BaseModel)


class Page(BaseModel, Generic[T]):
    """One page of a list, with the total number of matching items (Spoolman's `x-total-count`)."""

    items: list[T]
    total: int
