"""``layerwise analyze FILE [--plate N] [--json]``: per-layer, per-filament usage beside the slicer's figures."""

from __future__ import annotations

import argparse
import json
import sys

from server.analysis import AnalysisError, PrintAnalysis, analyze_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a sliced .gcode.3mf or .gcode file")
    parser.add_argument("--plate", default=None, help="plate number or Metadata/plate_N.gcode (default: the first)")
    parser.add_argument("--json", action="store_true", help="print the analysis as a JSON document")


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render(analysis: PrintAnalysis) -> str:
    lines = [
        f"plate {analysis.plate}: {analysis.layer_count} layers, {analysis.gcode_bytes} bytes of gcode"
        + (f", sliced by {analysis.slicer}" if analysis.slicer else ""),
        f"gcode MD5 {analysis.gcode_md5}",
        "",
        f"{'filament':>8} {'type':<6} {'colour':<9} {'mm':>10} {'g':>8} {'slicer mm':>10} {'slicer g':>8}",
    ]
    for f in analysis.filaments.values():
        lines.append(
            f"{f.index:>8} {(f.type or '-'):<6} {(f.color or '-'):<9} {f.mm:>10.2f} {_num(f.g, 2):>8} "
            f"{_num(f.slicer_mm, 2):>10} {_num(f.slicer_g, 2):>8}"
        )
    indices = list(analysis.filaments)
    lines += ["", f"{'layer':>6} " + " ".join(f"{'#' + str(i) + ' mm':>10}" for i in indices)]
    for n in range(analysis.layer_count + 1):
        usage = analysis.prelude() if n == 0 else analysis.layer(n)
        label = "prelude" if n == 0 else str(n)
        lines.append(f"{label:>7}" + "".join(f"{usage.get(i, 0.0):>11.2f}" for i in indices))
    changes = ", ".join(f"L{t.layer}:T{t.filament}" for t in analysis.tool_changes)
    lines += ["", f"filament loads (layer:filament): {changes or 'none'}"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        analysis = analyze_file(args.file, args.plate)
    except AnalysisError as err:
        print(f"layerwise analyze: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"layerwise analyze: {err.strerror or err}", file=sys.stderr)
        return 1
    if args.json:
        # The analysis refuses non-finite figures; allow_nan=False keeps "Infinity" out of the JSON regardless.
        try:
            text = json.dumps(analysis.to_json(), indent=1, allow_nan=False)
        except ValueError as err:
            print(f"layerwise analyze: {err}", file=sys.stderr)
            return 1
        sys.stdout.write(text + "\n")
    else:
        print(render(analysis))
    return 0
