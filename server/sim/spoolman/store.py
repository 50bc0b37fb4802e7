"""In-memory Spoolman data with Spoolman 0.26's semantics (pure, synchronous, thread safe).

The store keeps what Spoolman stores (e.g. a spool's `used_weight`) and derives the rest when it
renders an item, as Spoolman does: remaining weight from the initial weight, lengths from weights
through the filament's density and diameter. Rendered items are plain dicts shaped like the
`Vendor`, `Filament` and `Spool` schemas of Spoolman's OpenAPI document.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from server.sim.spoolman.query import Item, QueryError, id_filter, page, parse_ids, sort_items, text_filter

VERSION = "0.26.1"
ENTITY_TYPES = ("vendor", "filament", "spool")
FIELD_TYPES = ("text", "integer", "integer_range", "float", "float_range", "datetime", "boolean", "choice")


class StoreNotFound(LookupError):
    """Spoolman answers 404 with `{"message": ...}`."""


class StoreRejected(ValueError):
    """Spoolman answers 400 with `{"message": ...}`."""


def weight_from_length(length_mm: float, *, diameter_mm: float, density: float) -> float:
    """Grams of filament in `length_mm` (density in g/cm³: mm³ / 1000 = cm³).

    Spoolman's own formula (its ``math.weight_from_length``), kept here on purpose rather than imported
    from server.analysis.filament: the stand-in plays Spoolman, so it computes as Spoolman does.
    """
    return density * length_mm * math.pi * (diameter_mm / 2) ** 2 / 1000


def length_from_weight(weight_g: float, *, diameter_mm: float, density: float) -> float:
    return weight_g / density / (math.pi * (diameter_mm / 2) ** 2) * 1000


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Record:
    id: int
    values: dict[str, Any]
    extra: dict[str, str] = field(default_factory=dict)
    registered: str = field(default_factory=_now)


_VENDOR_FIELDS = ("name", "comment", "empty_spool_weight", "external_id")
_FILAMENT_FIELDS = (
    "name",
    "vendor_id",
    "material",
    "price",
    "density",
    "diameter",
    "weight",
    "spool_weight",
    "article_number",
    "comment",
    "settings_extruder_temp",
    "settings_bed_temp",
    "color_hex",
    "multi_color_hexes",
    "multi_color_direction",
    "external_id",
)
_SPOOL_FIELDS = (
    "filament_id",
    "price",
    "initial_weight",
    "spool_weight",
    "used_weight",
    "location",
    "lot_nr",
    "comment",
    "archived",
    "first_used",
    "last_used",
)


class SpoolmanStore:
    """Vendors, filaments, spools and extra-field definitions, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._vendors: dict[int, _Record] = {}
        self._filaments: dict[int, _Record] = {}
        self._spools: dict[int, _Record] = {}
        self._fields: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in ENTITY_TYPES}
        self._next_id = {kind: 1 for kind in ENTITY_TYPES}

    # ----- info -----------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "debug_mode": False,
            "automatic_backups": False,
            "data_dir": "/nonexistent/layerwise-spoolman-standin",
            "logs_dir": "/nonexistent/layerwise-spoolman-standin",
            "backups_dir": "/nonexistent/layerwise-spoolman-standin/backups",
            "db_type": "memory",
            "external_db_name": "SpoolmanDB",
            "git_commit": None,
            "build_date": None,
        }

    # ----- vendors --------------------------------------------------------------------------------

    def create_vendor(self, params: dict[str, Any]) -> Item:
        with self._lock:
            extra = self._checked_extra("vendor", params.get("extra") or {}, {})
            record = _Record(self._take_id("vendor"), _pick(params, _VENDOR_FIELDS), extra)
            self._vendors[record.id] = record
            return self._render_vendor(record)

    def get_vendor(self, vendor_id: int) -> Item:
        with self._lock:
            return self._render_vendor(self._find(self._vendors, "vendor", vendor_id))

    def list_vendors(self, query: dict[str, str]) -> tuple[list[Item], int]:
        with self._lock:
            items = [self._render_vendor(r) for r in self._vendors.values()]
        filters = []
        if "name" in query:
            filters.append(text_filter("name", query["name"]))
        if "external_id" in query:
            wanted = set(query["external_id"].split(","))
            filters.append(lambda item: item["external_id"] in wanted)
        return _select(items, filters, query)

    # ----- filaments ------------------------------------------------------------------------------

    def create_filament(self, params: dict[str, Any]) -> Item:
        with self._lock:
            vendor_id = params.get("vendor_id")
            if vendor_id is not None:
                self._find(self._vendors, "vendor", vendor_id)
            extra = self._checked_extra("filament", params.get("extra") or {}, {})
            record = _Record(self._take_id("filament"), _pick(params, _FILAMENT_FIELDS), extra)
            self._filaments[record.id] = record
            return self._render_filament(record)

    def get_filament(self, filament_id: int) -> Item:
        with self._lock:
            return self._render_filament(self._find(self._filaments, "filament", filament_id))

    def list_filaments(self, query: dict[str, str]) -> tuple[list[Item], int]:
        with self._lock:
            items = [self._render_filament(r) for r in self._filaments.values()]
        filters = []
        for param, path in (
            ("name", "name"),
            ("material", "material"),
            ("article_number", "article_number"),
            ("vendor.name", "vendor.name"),
            ("vendor_name", "vendor.name"),
        ):
            if param in query:
                filters.append(text_filter(path, query[param]))
        for param in ("vendor.id", "vendor_id"):
            if param in query:
                filters.append(id_filter("vendor.id", parse_ids(param, query[param]), none_id=-1))
        return _select(items, filters, query)

    # ----- spools ---------------------------------------------------------------------------------

    def create_spool(self, params: dict[str, Any]) -> Item:
        with self._lock:
            filament = self._find(self._filaments, "filament", params["filament_id"])
            values = _pick(params, _SPOOL_FIELDS)
            values.setdefault("archived", False)
            if values.get("initial_weight") is None:
                values["initial_weight"] = filament.values.get("weight")
            if values.get("spool_weight") is None:
                values["spool_weight"] = self._default_spool_weight(filament)
            values["used_weight"] = self._used_from_params(params, values["initial_weight"]) or 0.0
            extra = self._checked_extra("spool", params.get("extra") or {}, {})
            record = _Record(self._take_id("spool"), values, extra)
            self._spools[record.id] = record
            return self._render_spool(record)

    def get_spool(self, spool_id: int) -> Item:
        with self._lock:
            return self._render_spool(self._find(self._spools, "spool", spool_id))

    def update_spool(self, spool_id: int, params: dict[str, Any]) -> Item:
        """PATCH: only given fields change; `extra` merges per key and a null value clears a key."""
        with self._lock:
            record = self._find(self._spools, "spool", spool_id)
            if params.get("filament_id") is not None:
                self._find(self._filaments, "filament", params["filament_id"])
            changes = _pick(params, _SPOOL_FIELDS)
            initial = changes.get("initial_weight", record.values.get("initial_weight"))
            used = self._used_from_params(params, initial)
            changes.pop("used_weight", None)
            extra = self._checked_extra("spool", params.get("extra") or {}, record.extra)
            record.values.update(changes)
            if used is not None:
                record.values["used_weight"] = used
            record.extra = extra
            return self._render_spool(record)

    def delete_spool(self, spool_id: int) -> None:
        with self._lock:
            self._find(self._spools, "spool", spool_id)
            del self._spools[spool_id]

    def use_spool(self, spool_id: int, *, use_weight: float | None = None, use_length: float | None = None) -> Item:
        """Spoolman's atomic `used_weight += w`, floored at 0; a length is turned into a weight."""
        if use_weight is not None and use_length is not None:
            raise StoreRejected("Only specify either use_weight or use_length.")
        if use_weight is None and use_length is None:
            raise StoreRejected("Either use_weight or use_length must be specified.")
        with self._lock:
            record = self._find(self._spools, "spool", spool_id)
            if use_length is not None:
                filament = self._filaments[record.values["filament_id"]].values
                use_weight = weight_from_length(
                    use_length, diameter_mm=filament["diameter"], density=filament["density"]
                )
            assert use_weight is not None
            record.values["used_weight"] = max(record.values["used_weight"] + use_weight, 0.0)
            now = _now()
            if record.values.get("first_used") is None:
                record.values["first_used"] = now
            record.values["last_used"] = now
            return self._render_spool(record)

    def list_spools(self, query: dict[str, str]) -> tuple[list[Item], int]:
        with self._lock:
            items = [self._render_spool(r) for r in self._spools.values()]
        filters: list[Callable[[Item], bool]] = []
        if query.get("allow_archived", "false").lower() not in ("true", "1", "yes", "on"):
            filters.append(lambda item: not item["archived"])
        text_params = {
            "filament.name": "filament.name",
            "filament_name": "filament.name",
            "filament.material": "filament.material",
            "filament_material": "filament.material",
            "filament.vendor.name": "filament.vendor.name",
            "vendor_name": "filament.vendor.name",
            "location": "location",
            "lot_nr": "lot_nr",
        }
        for param, path in text_params.items():
            if param in query:
                filters.append(text_filter(path, query[param]))
        id_params = {
            "filament.id": "filament.id",
            "filament_id": "filament.id",
            "filament.vendor.id": "filament.vendor.id",
            "vendor_id": "filament.vendor.id",
        }
        for param, path in id_params.items():
            if param in query:
                filters.append(id_filter(path, parse_ids(param, query[param]), none_id=-1))
        return _select(items, filters, query)

    # ----- extra fields ---------------------------------------------------------------------------

    def list_fields(self, entity_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return sorted(self._fields[entity_type].values(), key=lambda f: (f["order"], f["key"]))

    def add_or_update_field(self, entity_type: str, key: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self._lock:
            existing = self._fields[entity_type].get(key)
            if existing is not None and existing["field_type"] != params["field_type"]:
                raise StoreRejected("Field type cannot be changed.")
            if params.get("choices") is not None and params["field_type"] != "choice":
                raise StoreRejected("Choices can only be set for field type choice.")
            if params["field_type"] == "choice" and not params.get("choices"):
                raise StoreRejected("Choices must be set for field type choice.")
            definition = {
                "name": params["name"],
                "order": params.get("order", 0),
                "unit": params.get("unit"),
                "field_type": params["field_type"],
                "default_value": params.get("default_value"),
                "choices": params.get("choices"),
                "multi_choice": params.get("multi_choice"),
                "key": key,
                "entity_type": entity_type,
            }
            if definition["default_value"] is not None:
                _check_extra_value(definition, definition["default_value"])
            self._fields[entity_type][key] = definition
            return self.list_fields(entity_type)

    def delete_field(self, entity_type: str, key: str) -> list[dict[str, Any]]:
        with self._lock:
            if key not in self._fields[entity_type]:
                raise StoreNotFound(f"Extra field with key {key} does not exist.")
            del self._fields[entity_type][key]
            records = {"vendor": self._vendors, "filament": self._filaments, "spool": self._spools}[entity_type]
            for record in records.values():
                record.extra.pop(key, None)
            return self.list_fields(entity_type)

    # ----- internals ------------------------------------------------------------------------------

    def _take_id(self, kind: str) -> int:
        new_id = self._next_id[kind]
        self._next_id[kind] += 1
        return new_id

    @staticmethod
    def _find(records: dict[int, _Record], kind: str, item_id: int) -> _Record:
        record = records.get(item_id)
        if record is None:
            raise StoreNotFound(f"No {kind} with ID {item_id} found.")
        return record

    def _default_spool_weight(self, filament: _Record) -> float | None:
        if filament.values.get("spool_weight") is not None:
            return filament.values["spool_weight"]
        vendor = self._vendors.get(filament.values.get("vendor_id") or -1)
        return vendor.values.get("empty_spool_weight") if vendor else None

    @staticmethod
    def _used_from_params(params: dict[str, Any], initial_weight: float | None) -> float | None:
        remaining, used = params.get("remaining_weight"), params.get("used_weight")
        if remaining is not None and used is not None:
            raise StoreRejected("Only specify either remaining_weight or used_weight.")
        if remaining is not None:
            if initial_weight is None:
                raise StoreRejected("remaining_weight can only be used if the initial weight is known.")
            return max(initial_weight - remaining, 0.0)
        return used

    def _checked_extra(self, entity_type: str, given: dict[str, str | None], current: dict[str, str]) -> dict[str, str]:
        merged = dict(current)
        for key, value in given.items():
            definition = self._fields[entity_type].get(key)
            if definition is None:
                raise StoreRejected(f"Unknown extra field {key}.")
            if value is None:
                merged.pop(key, None)
                continue
            _check_extra_value(definition, value)
            merged[key] = value
        return merged

    def _render_vendor(self, record: _Record) -> Item:
        values = record.values
        return {
            "id": record.id,
            "registered": record.registered,
            "name": values["name"],
            "comment": values.get("comment"),
            "empty_spool_weight": values.get("empty_spool_weight"),
            "external_id": values.get("external_id"),
            "extra": dict(record.extra),
        }

    def _render_filament(self, record: _Record) -> Item:
        values = record.values
        vendor = self._vendors.get(values.get("vendor_id") or -1)
        rendered: Item = {"id": record.id, "registered": record.registered}
        for name in _FILAMENT_FIELDS:
            if name != "vendor_id":
                rendered[name] = values.get(name)
        rendered["vendor"] = self._render_vendor(vendor) if vendor else None
        rendered["extra"] = dict(record.extra)
        return rendered

    def _render_spool(self, record: _Record) -> Item:
        values = record.values
        filament = self._filaments[values["filament_id"]]
        density, diameter = filament.values["density"], filament.values["diameter"]
        used_weight = values["used_weight"]
        initial = values.get("initial_weight")
        remaining = max(initial - used_weight, 0.0) if initial is not None else None
        return {
            "id": record.id,
            "registered": record.registered,
            "first_used": values.get("first_used"),
            "last_used": values.get("last_used"),
            "filament": self._render_filament(filament),
            "price": values.get("price"),
            "remaining_weight": remaining,
            "initial_weight": initial,
            "spool_weight": values.get("spool_weight"),
            "used_weight": used_weight,
            "remaining_length": (
                None if remaining is None else length_from_weight(remaining, diameter_mm=diameter, density=density)
            ),
            "used_length": length_from_weight(used_weight, diameter_mm=diameter, density=density),
            "location": values.get("location"),
            "lot_nr": values.get("lot_nr"),
            "comment": values.get("comment"),
            "archived": bool(values.get("archived")),
            "extra": dict(record.extra),
        }


def _pick(params: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: params[name] for name in names if name in params}


def _select(items: list[Item], filters: list[Callable[[Item], bool]], query: dict[str, str]) -> tuple[list[Item], int]:
    """Filter, sort and page; returns the page and the total count before paging (`x-total-count`)."""
    matched = sort_items([item for item in items if all(f(item) for f in filters)], query.get("sort"))
    limit = _int_param(query, "limit")
    offset = _int_param(query, "offset") or 0
    return page(matched, limit, offset), len(matched)


def _int_param(query: dict[str, str], name: str) -> int | None:
    if name not in query:
        return None
    try:
        return int(query[name])
    except ValueError:
        raise QueryError(name, "Input should be a valid integer, unable to parse string as an integer") from None


def _check_extra_value(definition: dict[str, Any], raw: str) -> None:
    """Spoolman stores extra values as JSON text and checks them against the field's type."""
    key = definition["key"]
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        raise StoreRejected(f"Value of extra field {key} is not valid JSON.") from None
    field_type = definition["field_type"]
    number = (int, float)
    checks: dict[str, Callable[[Any], bool]] = {
        "text": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, number) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "datetime": lambda v: isinstance(v, str),
        "integer_range": lambda v: isinstance(v, list) and len(v) == 2,
        "float_range": lambda v: isinstance(v, list) and len(v) == 2,
        "choice": lambda v: _choice_ok(definition, v),
    }
    if not checks[field_type](value):
        raise StoreRejected(f"Value of extra field {key} is not a valid {field_type}.")


def _choice_ok(definition: dict[str, Any], value: Any) -> bool:
    choices = definition.get("choices") or []
    if definition.get("multi_choice"):
        return isinstance(value, list) and all(v in choices for v in value)
    return value in choices
