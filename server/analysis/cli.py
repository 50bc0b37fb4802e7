"""``layerwise analyze FILE [--plate N] [--layers] [--json]``: per-filament usage beside the slicer's figures.

For people by default: a summary with filaments numbered as the slicer shows them (1-based) and a totals
row; ``--layers`` adds the per-layer table. ``--json`` is the machine output and keeps its shape (0-based
indices, raw signed figures).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from types import SimpleNamespace

from server.analysis import AnalysisError, PrintAnalysis, analyze_file
from server.analysis.zipreader import is_zipfile

TYPE_CHECKING = False  # typing.TYPE_CHECKING without typing's import
if TYPE_CHECKING:
    import argparse

SNIFF_BYTES = 8192
RETRACTION_MARK = "r"
RETRACTION_NOTE = (f"{RETRACTION_MARK} = net retraction: the filament was pulled back more than it was pushed "
                   "(it is pushed again later), so the figure is below zero; totals count it once")
DIFFERENCE_NOTE = "vs slicer: Layerwise's figure minus the slicer's (the slicer rounds to 0.01 g)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a sliced .gcode.3mf or .gcode file")
    parser.add_argument("--plate", default=None, help="plate number or Metadata/plate_N.gcode (default: the first)")
    parser.add_argument("--layers", action="store_true", help="also print the per-layer table (mm per filament)")
    parser.add_argument("--json", action="store_true",
                        help="print the analysis as a JSON document (0-based filament indices)")


def quick_args(argv: list[str]) -> SimpleNamespace | None:
    """``FILE`` with ``--layers``, ``--json``, ``--plate N`` or ``--plate=N`` in any order, read as argparse
    reads them, without argparse (server/cli.py says why); None for any other form (``--help``, an
    abbreviation, a value or a file name starting with ``-``, a second file or plate): argparse's then."""
    found: dict[str, object] = {"file": None, "plate": None, "layers": False, "json": False}
    words = iter(argv)
    for word in words:
        if word in ("--layers", "--json"):
            found[word[2:]] = True
            continue
        if word == "--plate" or word.startswith("--plate="):
            value = word[len("--plate=") :] if "=" in word else next(words, None)
            if found["plate"] is not None or value is None or value.startswith("-"):
                return None
            found["plate"] = value
            continue
        if word.startswith("-") or found["file"] is not None:
            return None
        found["file"] = word
    return None if found["file"] is None else SimpleNamespace(**found)


class _Figures:
    """Formats figures for people: a negative one carries the retraction mark, and the note is added once."""

    def __init__(self) -> None:
        self.retracted = False

    def mm(self, value: float | None, width: int) -> str:
        if value is None:
            return f"{'-':>{width}}"
        if round(value, 2) < 0:
            self.retracted = True
            return f"{value:.2f}{RETRACTION_MARK}".rjust(width)
        return f"{abs(value) if round(value, 2) == 0 else value:.2f}".rjust(width)  # never "-0.00"


def _sum(values: Iterable[float | None]) -> float | None:
    items = list(values)
    return None if not items or any(v is None for v in items) else sum(v for v in items if v is not None)


def _difference(ours_g: float | None, slicer_g: float | None, ours_mm: float, slicer_mm: float | None) -> str:
    if ours_g is not None and slicer_g is not None:
        return f"{round(ours_g - slicer_g, 2) + 0.0:+.2f} g"  # + 0.0: never "-0.00"
    if slicer_mm is not None:
        return f"{round(ours_mm - slicer_mm, 2) + 0.0:+.2f} mm"
    return "-"


def render_summary(analysis: PrintAnalysis, name: str, figures: _Figures) -> list[str]:
    head = f"{name}, plate {analysis.plate}: {analysis.layer_count} layers"
    lines = [head + (f", sliced by {analysis.slicer}" if analysis.slicer else ""), ""]
    lines.append(f"{'filament':<9}{'type':<8}{'colour':<9}{'mm':>11}{'g':>9}{'slicer mm':>11}{'slicer g':>9}"
                 f"{'vs slicer':>12}")
    usages = list(analysis.filaments.values())
    for f in usages:
        lines.append(
            f"{f.index + 1:<9}{(f.type or '-'):<8}{(f.color or '-'):<9}{figures.mm(f.mm, 11)}{figures.mm(f.g, 9)}"
            f"{figures.mm(f.slicer_mm, 11)}{figures.mm(f.slicer_g, 9)}"
            f"{_difference(f.g, f.slicer_g, f.mm, f.slicer_mm):>12}"
        )
    if len(usages) > 1:
        mm, g = sum(f.mm for f in usages), _sum(f.g for f in usages)
        slicer_mm, slicer_g = _sum(f.slicer_mm for f in usages), _sum(f.slicer_g for f in usages)
        lines.append(f"{'total':<26}{figures.mm(mm, 11)}{figures.mm(g, 9)}{figures.mm(slicer_mm, 11)}"
                     f"{figures.mm(slicer_g, 9)}{_difference(g, slicer_g, mm, slicer_mm):>12}")
    return lines


def render_layers(analysis: PrintAnalysis, figures: _Figures) -> list[str]:
    indices = list(analysis.filaments)
    lines = [f"{'layer':>7}" + "".join(f"{'F' + str(i + 1) + ' mm':>11}" for i in indices)]
    for n in range(analysis.layer_count + 1):
        usage = analysis.prelude() if n == 0 else analysis.layer(n)
        label = "prelude" if n == 0 else str(n)
        lines.append(f"{label:>7}" + "".join(figures.mm(usage.get(i, 0.0), 11) for i in indices))
    changes = ", ".join(f"L{t.layer}:F{t.filament + 1}" for t in analysis.tool_changes)
    return [*lines, "", f"filament loads (layer:filament): {changes or 'none'}"]


def render(analysis: PrintAnalysis, name: str = "", *, layers: bool = False) -> str:
    figures = _Figures()
    lines = render_summary(analysis, name or "file", figures)
    if layers:
        lines += ["", *render_layers(analysis, figures)]
    lines += ["", DIFFERENCE_NOTE]
    if figures.retracted:
        lines.append(RETRACTION_NOTE)
    if not layers:
        lines.append("Per-layer usage: --layers; machine-readable: --json")
    return "\n".join(lines)


def _as_pathlib_shows(path: str) -> str:
    """``str(Path(path))`` (empty and ``.`` parts dropped, ``..`` kept) without pathlib's import (~3 ms of this
    command's start-up, with urllib.parse and ipaddress)."""
    root = "//" if path.startswith("//") and not path.startswith("///") else "/" if path.startswith("/") else ""
    return root + "/".join(part for part in path.split("/") if part not in ("", ".")) or "."


def _name(path: str) -> str:
    """``Path(path).name``."""
    shown = _as_pathlib_shows(path)
    return "" if shown == "." else shown.rpartition("/")[2]


def _not_a_print_file(path: str) -> str | None:
    """A binary file that is not a zip (a photo, a .bgcode, a slicer project without gcode) is no print file:
    say so, rather than analysing it into "no layers"."""
    if is_zipfile(path):
        return None
    with open(path, "rb") as file:
        head = file.read(SNIFF_BYTES)
    if b"\0" in head:
        return f"{_as_pathlib_shows(path)} is neither a .gcode nor a .gcode.3mf file (it holds binary data)"
    return None


def run(args: argparse.Namespace) -> int:
    path = args.file
    try:
        problem = _not_a_print_file(path)
        if problem:
            print(f"layerwise analyze: {problem}", file=sys.stderr)
            return 1
        # The summary shows no MD5: computing it would be ~9 ms of a 6.5 MB file's ~0.1 s (--json has it).
        analysis = analyze_file(args.file, args.plate, one_shot=True, hashed=args.json)
    except AnalysisError as err:
        print(f"layerwise analyze: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"layerwise analyze: {err.strerror or err}", file=sys.stderr)
        return 1
    if args.json:
        # The analysis refuses non-finite figures; allow_nan=False keeps "Infinity" out of the JSON regardless.
        import json  # only here: the summary needs no JSON encoder

        try:
            text = json.dumps(analysis.to_json(), indent=1, allow_nan=False)
        except ValueError as err:
            print(f"layerwise analyze: {err}", file=sys.stderr)
            return 1
        sys.stdout.write(text + "\n")
    else:
        print(render(analysis, _name(path), layers=args.layers))
    return 0
