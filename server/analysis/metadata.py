"""What a sliced file says about itself: slice_info.config, plate_N.json, model_settings.config,
project_settings.config and the gcode header. Pure parsing over bytes.

Layouts: Bambu Studio 1.x writes no lengths in the gcode header (slice_info ``used_m`` is the only
slicer figure); 2.x headers carry per-filament lengths, weights, densities and diameters for the
filaments listed in ``; filament: 1,4`` (1-based). OrcaSlicer writes the same header and adds a
``; filament used [mm] = ...`` footer; its plain .gcode has no archive, so filament properties come from
the config block (``; filament_density = ...``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from xml.parsers import expat

from server.analysis.errors import BadMetadata
from server.analysis.records import NamedTuple


class SliceFilament(NamedTuple):
    """A filament of the plate as slice_info.config lists it."""

    index: int  # 0-based slicer filament index (slice_info ids are 1-based)
    type: str | None
    color: str | None
    used_m: float | None
    used_g: float | None


class PlateObject(NamedTuple):
    identify_id: str
    name: str
    skipped: bool


class FilamentSpec(NamedTuple):
    """A slicer filament's properties (project_settings.config, or the gcode config block)."""

    index: int
    type: str | None = None
    color: str | None = None
    vendor: str | None = None
    settings_id: str | None = None
    density: float | None = None  # g/cm³
    diameter: float | None = None  # mm


class GcodeHeader(NamedTuple):
    """The gcode header's figures. Records here are NamedTuples (archive.Limits says why); their dict
    defaults are shared, so never mutated."""

    slicer: str | None = None
    layer_count: int | None = None
    lengths_mm: dict[int, float] = {}  # noqa: RUF012 (shared, never mutated); per filament index
    weights_g: dict[int, float] = {}  # noqa: RUF012 (shared, never mutated)
    used_filaments: tuple[int, ...] = ()  # 0-based, from "; filament: 1,4"
    specs: dict[int, FilamentSpec] = {}  # noqa: RUF012 (shared, never mutated)


class ArchiveMetadata(NamedTuple):
    plate: int
    slicer: str | None = None
    plate_name: str | None = None
    prediction_s: int | None = None
    weight_g: float | None = None
    slice_filaments: tuple[SliceFilament, ...] = ()
    objects: tuple[PlateObject, ...] = ()
    plate_json: dict[str, object] = {}  # noqa: RUF012 (shared, never mutated)
    specs: dict[int, FilamentSpec] = {}  # noqa: RUF012 (shared, never mutated); project_settings, per slicer index
    header: GcodeHeader = GcodeHeader()
    thumbnail: str | None = None  # member name of the plate thumbnail

    def used_filaments(self) -> tuple[int, ...]:
        """Slicer filament indices the plate uses, as the slicer lists them."""
        if self.slice_filaments:
            return tuple(f.index for f in self.slice_filaments)
        ids = self.plate_json.get("filament_ids")
        if isinstance(ids, list) and all(type(i) is int and 0 <= i <= MAX_FILAMENT_INDEX for i in ids):
            return tuple(ids)
        return self.header.used_filaments


class _Element:
    """The little of ElementTree's Element these parsers use (``get``, ``iter``, ``findall``), built by expat
    directly: xml.etree's import is ~2 ms of a ~0.09 s `layerwise analyze`. Names as ElementTree makes them
    (``{uri}local`` in a namespace)."""

    __slots__ = ("attrib", "children", "tag")

    def __init__(self, tag: str, attrib: dict[str, str]) -> None:
        self.tag, self.attrib, self.children = tag, attrib, []

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.attrib.get(key, default)

    def iter(self, tag: str) -> Iterator[_Element]:
        """This element and its descendants named ``tag``, in document order (no recursion: a hostile file
        may nest deeply)."""
        todo: list[_Element] = [self]
        while todo:
            node = todo.pop()
            if node.tag == tag:
                yield node
            todo.extend(reversed(node.children))

    def findall(self, tag: str) -> list[_Element]:
        return [child for child in self.children if child.tag == tag]


def _universal(name: str) -> str:
    return "{" + name if "}" in name else name  # expat's "uri}local" -> ElementTree's "{uri}local"


def _ignore(_text: str) -> None:
    pass


def _xml(data: bytes, name: str) -> _Element:
    parser = expat.ParserCreate(None, "}")  # the namespace separator ElementTree's parser uses
    top: list[_Element] = []
    open_elements: list[_Element] = []

    def start(tag: str, attrib: dict[str, str]) -> None:
        node = _Element(_universal(tag), {_universal(k): v for k, v in attrib.items()})
        (open_elements[-1].children if open_elements else top).append(node)
        open_elements.append(node)

    def end(_tag: str) -> None:
        open_elements.pop()

    def other(text: str) -> None:
        """What expat passes on unhandled: an entity it could not expand (the file names a DTD it does not
        read) is an error, as in ElementTree's parser."""
        if len(text) >= 2 and text[0] == "&":
            where = f"line {parser.ErrorLineNumber}, column {parser.ErrorColumnNumber}"
            raise BadMetadata(f"{name} is not valid XML: undefined entity {text}: {where}")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = _ignore  # text is not used; handled, it does not reach other()
    parser.DefaultHandlerExpand = other
    try:
        parser.Parse(data, True)
    except expat.ExpatError as err:
        raise BadMetadata(f"{name} is not valid XML: {err}") from None
    except (LookupError, ValueError) as err:  # an unknown or multi-byte encoding in the XML declaration
        raise BadMetadata(f"{name} is not readable XML: {err}") from None
    return top[0]


MAX_FILAMENT_INDEX = 254  # T0..T254: slicer filament indices beyond are not filaments (gcode.MAX_FILAMENT_TOOL)
MAX_OBJECTS = 10_000  # objects listed per plate (informational; keeps memory bounded)


# Beyond any real figure (metres or grams of filament, seconds, ids); what is larger is nonsense, and would
# overflow to infinity when converted (used_m * 1000), which JSON cannot carry.
_LARGEST = 1e15


def _number(text: str | None) -> float | None:
    """A finite, plausible number, or None: metadata figures are informational, so nonsense counts as missing."""
    if text is None:
        return None
    try:
        value = float(text)
    except (ValueError, TypeError):
        return None
    return value if math.isfinite(value) and abs(value) <= _LARGEST else None


def _json(data: bytes, name: str) -> object:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        text = str(err) if not isinstance(err, RecursionError) else "nested too deeply"
        raise BadMetadata(f"{name} is not valid JSON: {text}") from None


def parse_slice_info(data: bytes, plate: int) -> tuple[str | None, ArchiveMetadata]:
    """(client version, partial metadata of the plate) from Metadata/slice_info.config."""
    root = _xml(data, "slice_info.config")
    version = None
    for item in root.iter("header_item"):
        if item.get("key") == "X-BBL-Client-Version":
            version = item.get("value")
    for node in root.iter("plate"):
        meta = {m.get("key"): m.get("value") for m in node.findall("metadata")}
        if meta.get("index") != str(plate):
            continue
        filaments: list[SliceFilament] = []
        for f in node.findall("filament"):
            number = _number(f.get("id"))
            if number is None or not 1 <= number <= MAX_FILAMENT_INDEX + 1:
                continue
            if any(known.index == int(number) - 1 for known in filaments):
                continue  # listed twice: the first counts
            filaments.append(
                SliceFilament(
                    index=int(number) - 1,
                    type=f.get("type"),
                    color=f.get("color"),
                    used_m=_number(f.get("used_m")),
                    used_g=_number(f.get("used_g")),
                )
            )
        objects = tuple(
            PlateObject(o.get("identify_id", ""), o.get("name", ""), o.get("skipped") == "true")
            for o in node.findall("object")[:MAX_OBJECTS]
        )
        prediction = _number(meta.get("prediction"))
        return version, ArchiveMetadata(
            plate=plate,
            prediction_s=int(prediction) if prediction is not None else None,
            weight_g=_number(meta.get("weight")),
            slice_filaments=tuple(filaments),
            objects=objects,
        )
    return version, ArchiveMetadata(plate=plate)


def parse_model_settings(data: bytes, plate: int) -> dict[str, str]:
    """The plate's entries of Metadata/model_settings.config (plater_name, gcode_file, thumbnail_file)."""
    root = _xml(data, "model_settings.config")
    for node in root.iter("plate"):
        meta = {m.get("key", ""): m.get("value", "") for m in node.findall("metadata")}
        if meta.get("plater_id") == str(plate) or meta.get("gcode_file") == f"Metadata/plate_{plate}.gcode":
            return meta
    return {}


def parse_plate_json(data: bytes) -> dict[str, object]:
    value = _json(data, "plate json")
    return value if isinstance(value, dict) else {}


def split_values(text: str) -> list[str]:
    """``PLA;PLA``, ``1.24,1.24``, ``"Bambu Lab";"Bambu Lab"`` or ``2586.78, 2604.14`` -> items."""
    sep = ";" if ";" in text else ","
    # One item per slicer filament at most (T0-T254): a longer list is nonsense, not worth the memory.
    items = text.split(sep, MAX_FILAMENT_INDEX + 1)[: MAX_FILAMENT_INDEX + 1]
    return [item.strip().strip('"').strip() for item in items]


def _at(values: list[str] | None, i: int) -> str | None:
    if not values or i >= len(values):
        return None
    return values[i] or None


def specs_from_settings(settings: dict[str, object]) -> dict[int, FilamentSpec]:
    """Per slicer filament: type, colour, vendor, settings id, density, diameter."""

    def values(key: str) -> list[str] | None:
        raw = settings.get(key)
        if isinstance(raw, list):
            raw = raw[: MAX_FILAMENT_INDEX + 1]
            return [str(v) if isinstance(v, str | int | float) else "" for v in raw]  # nested: missing
        if isinstance(raw, str):
            return split_values(raw)
        return None

    columns = {
        key: values(key)
        for key in (
            "filament_type",
            "filament_colour",
            "filament_vendor",
            "filament_settings_id",
            "filament_density",
            "filament_diameter",
        )
    }
    count = max((len(v) for v in columns.values() if v), default=0)
    return {
        i: FilamentSpec(
            index=i,
            type=_at(columns["filament_type"], i),
            color=_at(columns["filament_colour"], i),
            vendor=_at(columns["filament_vendor"], i),
            settings_id=_at(columns["filament_settings_id"], i),
            density=_number(_at(columns["filament_density"], i)),
            diameter=_number(_at(columns["filament_diameter"], i)),
        )
        for i in range(count)
    }


def parse_project_settings(data: bytes) -> dict[int, FilamentSpec]:
    settings = _json(data, "project_settings.config")
    return specs_from_settings(settings) if isinstance(settings, dict) else {}


_SLICER = re.compile(rb"^; (?:generated by )?(BambuStudio|OrcaSlicer|[A-Za-z]+Slicer) ([0-9][0-9.]*)", re.M)


def slicer_name(head: bytes) -> str | None:
    match = _SLICER.search(head[:4096])
    return f"{match.group(1).decode()} {match.group(2).decode()}" if match else None


def _per_filament(values: list[float], used: tuple[int, ...], total_filaments: int) -> dict[int, float]:
    """Header/footer figures list either the used filaments (in ``; filament:`` order) or all of them."""
    if used and len(values) == len(used):
        return dict(zip(used, values, strict=True))
    if len(values) == total_filaments or not used:
        return {i: v for i, v in enumerate(values)}
    return {}


def parse_header(keys: dict[str, str], head: bytes = b"") -> GcodeHeader:
    """The gcode header/config/footer comment values the engine collected (see gcode.HEADER_KEYS)."""

    def numbers(key: str) -> list[float]:
        raw = keys.get(key)
        if not raw:
            return []
        return [v for v in (_number(x) for x in split_values(raw)) if v is not None]

    used = tuple(int(v) - 1 for v in numbers("filament") if 1 <= v <= MAX_FILAMENT_INDEX + 1 and v == int(v))
    specs = specs_from_settings(dict(keys))
    total = len(specs)
    lengths = _per_filament(numbers("total filament length [mm]"), used, total)
    weights = _per_filament(numbers("total filament weight [g]"), used, total)
    if not lengths:  # OrcaSlicer footer
        lengths = _per_filament(numbers("filament used [mm]"), used, total)
    if not weights:
        weights = _per_filament(numbers("filament used [g]"), used, total)
    layers = numbers("total layer number") or numbers("total layers count")
    return GcodeHeader(
        slicer=slicer_name(head),
        layer_count=int(layers[0]) if layers else None,
        lengths_mm=lengths,
        weights_g=weights,
        used_filaments=used,
        specs=specs,
    )
