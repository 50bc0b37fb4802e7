"""Request bodies the stand-in accepts, mirroring the parameter schemas of Spoolman's OpenAPI document.

Unknown keys are refused with Spoolman's 422 shape (`extra_forbidden` at `["body", key]`). Spoolman
itself ignores them (FastAPI's default), which is exactly how a misspelt key from Layerwise's client
would disappear silently; the stand-in is stricter on purpose so such a key fails the test that sends
it. Only keys the caller sent are applied, which is what gives PATCH its "only fields specified are
affected" meaning.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Extra = dict[str, str | None] | None
FieldType = Literal["text", "integer", "integer_range", "float", "float_range", "datetime", "boolean", "choice"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VendorParameters(_Body):
    name: str = Field(max_length=64)
    comment: str | None = Field(default=None, max_length=1024)
    empty_spool_weight: float | None = Field(default=None, ge=0)
    external_id: str | None = Field(default=None, max_length=256)
    extra: Extra = None


class FilamentParameters(_Body):
    name: str | None = Field(default=None, max_length=64)
    vendor_id: int | None = None
    material: str | None = Field(default=None, max_length=64)
    price: float | None = Field(default=None, ge=0)
    density: float = Field(gt=0)
    diameter: float = Field(gt=0)
    weight: float | None = Field(default=None, gt=0)
    spool_weight: float | None = Field(default=None, ge=0)
    article_number: str | None = Field(default=None, max_length=64)
    comment: str | None = Field(default=None, max_length=1024)
    settings_extruder_temp: int | None = Field(default=None, ge=0)
    settings_bed_temp: int | None = Field(default=None, ge=0)
    color_hex: str | None = Field(default=None, min_length=6, max_length=8)
    multi_color_hexes: str | None = Field(default=None, min_length=6)
    multi_color_direction: Literal["coaxial", "longitudinal"] | None = None
    external_id: str | None = Field(default=None, max_length=256)
    extra: Extra = None


class _SpoolFields(_Body):
    first_used: str | None = None
    last_used: str | None = None
    price: float | None = Field(default=None, ge=0)
    initial_weight: float | None = Field(default=None, ge=0)
    spool_weight: float | None = Field(default=None, ge=0)
    remaining_weight: float | None = Field(default=None, ge=0)
    used_weight: float | None = Field(default=None, ge=0)
    location: str | None = Field(default=None, max_length=64)
    lot_nr: str | None = Field(default=None, max_length=64)
    comment: str | None = Field(default=None, max_length=1024)
    archived: bool = False
    extra: Extra = None


class SpoolParameters(_SpoolFields):
    filament_id: int


class SpoolUpdateParameters(_SpoolFields):
    filament_id: int | None = None


class SpoolUseParameters(_Body):
    use_length: float | None = None
    use_weight: float | None = None


class ExtraFieldParameters(_Body):
    name: str = Field(min_length=1, max_length=128)
    order: int = 0
    unit: str | None = Field(default=None, min_length=1, max_length=16)
    field_type: FieldType
    default_value: str | None = None
    choices: list[str] | None = Field(default=None, min_length=1)
    multi_choice: bool | None = None


def validation_detail(error: ValidationError, prefix: str = "body") -> list[dict[str, Any]]:
    """FastAPI's 422 `detail` list (`loc`, `msg`, `type`), as Spoolman returns it."""
    return [
        {"loc": [prefix, *item["loc"]], "msg": item["msg"], "type": item["type"]}
        for item in error.errors(include_url=False, include_context=False, include_input=False)
    ]
