"""The compact analysis result the tracking engine consumes, and its stable JSON form.

JSON document (``format: "layerwise.analysis/1"``), keys of per-filament maps are the 0-based slicer
filament index as a string:

    plate, layer_count, gcode_md5, gcode_bytes, slicer, prediction_s, weight_g,
    filaments: [{index, mm, g, density, diameter, type, color, vendor, settings_id, slicer_mm, slicer_g}],
    prelude: {index: mm}, layers: [{index: mm}] (layer 1..N), marks: [[[percent, {index: mm}], ...]] per
    layer 0..N (usage within the layer up to each M73 P mark), tool_changes: [[layer, index], ...]
"""

from __future__ import annotations

import math
from bisect import bisect_right

from server.analysis import filament
from server.analysis.gcode import Mark, ToolChange, Usage
from server.analysis.records import NamedTuple

FORMAT = "layerwise.analysis/1"


def grams(mm: float, diameter: float | None, density: float | None) -> float | None:
    """mm of filament -> g: mm · π(d/2)² [mm³] · ρ [g/cm³] / 1000."""
    if diameter is None or density is None or not (0 < diameter < 100 and 0 < density < 100):
        return None  # a nonsense figure in the file is treated as missing
    return filament.grams(mm, diameter, density)


class FilamentUsage(NamedTuple):
    index: int  # 0-based slicer filament index
    mm: float
    g: float | None
    density: float | None = None
    diameter: float | None = None
    type: str | None = None
    color: str | None = None
    vendor: str | None = None
    settings_id: str | None = None
    slicer_mm: float | None = None
    slicer_g: float | None = None


def _keys_to_str(usage: Usage) -> dict[str, float]:
    return {str(k): v for k, v in usage.items()}


def _keys_to_int(usage: dict[str, float]) -> Usage:
    out = {int(k): float(v) for k, v in usage.items()}
    if not all(math.isfinite(v) for v in out.values()):  # e.g. "Infinity" stored before analysis refused it
        raise ValueError("non-finite figure in a stored analysis")
    return out


def _add(a: Usage, b: Usage) -> Usage:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0.0) + v
    return dict(sorted(out.items()))


_FIELDS = ("layer_count", "plate", "gcode_md5", "filaments", "tool_changes", "layers", "marks", "gcode_bytes",
           "slicer", "prediction_s", "weight_g")


class PrintAnalysis:
    """One plate's analysis; immutable. A plain class rather than a frozen dataclass, for ``layerwise
    analyze``'s start-up (archive.Limits says why); equality and repr cover the fields, not ``cumulative``
    (derived from ``layers``)."""

    __slots__ = (*_FIELDS, "cumulative")
    layer_count: int
    plate: int
    gcode_md5: str
    filaments: dict[int, FilamentUsage]
    tool_changes: tuple[ToolChange, ...]
    layers: tuple[Usage, ...]  # [0] = prelude, [n] = layer n
    marks: tuple[tuple[Mark, ...], ...]
    gcode_bytes: int
    slicer: str | None
    prediction_s: int | None
    weight_g: float | None
    cumulative: tuple[Usage, ...]  # cumulative[n]: everything used through layer n

    def __init__(
        self,
        layer_count: int,
        plate: int,
        gcode_md5: str,
        filaments: dict[int, FilamentUsage],
        tool_changes: tuple[ToolChange, ...],
        layers: tuple[Usage, ...],
        marks: tuple[tuple[Mark, ...], ...],
        gcode_bytes: int = 0,
        slicer: str | None = None,
        prediction_s: int | None = None,
        weight_g: float | None = None,
    ) -> None:
        values = (layer_count, plate, gcode_md5, filaments, tool_changes, layers, marks, gcode_bytes, slicer,
                  prediction_s, weight_g)
        for name, value in zip(_FIELDS, values, strict=True):
            object.__setattr__(self, name, value)
        running: Usage = {}
        cumulative = []
        for layer in layers:
            running = _add(running, layer)
            cumulative.append(running)
        object.__setattr__(self, "cumulative", tuple(cumulative))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"PrintAnalysis is immutable: cannot set {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _FIELDS)

    __hash__ = None  # type: ignore[assignment]  # like the frozen dataclass it was: its dicts cannot hash

    def __repr__(self) -> str:
        return f"PrintAnalysis({', '.join(f'{name}={getattr(self, name)!r}' for name in _FIELDS)})"

    def prelude(self) -> Usage:
        """mm per filament index before layer 1 (start gcode, purge line)."""
        return dict(self.layers[0])

    def layer(self, n: int) -> Usage:
        """mm per filament in layer n (1-based)."""
        if not 1 <= n <= self.layer_count:
            raise IndexError(f"layer {n} is outside 1..{self.layer_count}")
        return dict(self.layers[n])

    def used_through(self, n: int) -> Usage:
        """Cumulative mm per filament including the prelude; n=0 -> prelude only. O(1)."""
        if n < 0:
            raise IndexError(f"layer {n} is negative")
        return dict(self.cumulative[min(n, self.layer_count)])

    def layer_at_percent(self, n: int, mc_percent: int) -> Usage:
        """mm used within layer n up to its last M73 P mark <= mc_percent (pro-rata billing on cancel).
        Before the layer's first mark (or for a layer without marks) nothing is counted."""
        if not 0 <= n <= self.layer_count:
            raise IndexError(f"layer {n} is outside 0..{self.layer_count}")
        marks = self.marks[n]
        i = bisect_right([p for p, _ in marks], mc_percent)
        return dict(marks[i - 1][1]) if i else {}

    def totals(self) -> Usage:
        return dict(self.cumulative[-1])

    def to_json(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "plate": self.plate,
            "layer_count": self.layer_count,
            "gcode_md5": self.gcode_md5,
            "gcode_bytes": self.gcode_bytes,
            "slicer": self.slicer,
            "prediction_s": self.prediction_s,
            "weight_g": self.weight_g,
            "filaments": [f._asdict() for f in self.filaments.values()],
            "prelude": _keys_to_str(self.layers[0]),
            "layers": [_keys_to_str(layer) for layer in self.layers[1:]],
            "marks": [[[p, _keys_to_str(u)] for p, u in marks] for marks in self.marks],
            "tool_changes": [[t.layer, t.filament] for t in self.tool_changes],
        }

    @classmethod
    def from_json(cls, doc: dict[str, object]) -> PrintAnalysis:
        """The document ``to_json`` wrote; ValueError (or KeyError) for anything else."""
        try:
            return cls._from_json(doc)
        except (TypeError, AttributeError, OverflowError) as err:
            raise ValueError(f"malformed {FORMAT} document: {err}") from None

    @classmethod
    def _from_json(cls, doc: dict[str, object]) -> PrintAnalysis:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        filaments = [FilamentUsage(**f) for f in doc["filaments"]]  # type: ignore[union-attr]
        layers = [doc["prelude"], *doc["layers"]]  # type: ignore[misc]
        return cls(
            layer_count=int(doc["layer_count"]),  # type: ignore[arg-type]
            plate=int(doc["plate"]),  # type: ignore[arg-type]
            gcode_md5=str(doc["gcode_md5"]),
            filaments={f.index: f for f in filaments},
            tool_changes=tuple(ToolChange(int(a), int(b)) for a, b in doc["tool_changes"]),  # type: ignore[union-attr]
            layers=tuple(_keys_to_int(u) for u in layers),
            marks=tuple(
                tuple((int(p), _keys_to_int(u)) for p, u in marks)
                for marks in doc["marks"]  # type: ignore[union-attr]
            ),
            gcode_bytes=int(doc.get("gcode_bytes") or 0),  # type: ignore[arg-type]
            slicer=doc.get("slicer"),  # type: ignore[arg-type]
            prediction_s=doc.get("prediction_s"),  # type: ignore[arg-type]
            weight_g=doc.get("weight_g"),  # type: ignore[arg-type]
        )
