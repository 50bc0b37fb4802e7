"""``layerwise analyze``'s usual command lines are read without argparse (``quick_args``, for start-up time):
every form it accepts must give what argparse gives, and every other form is left to argparse."""

from __future__ import annotations

import pytest

from server.analysis.cli import quick_args
from server.cli import build_parser

ACCEPTED = [
    ["f.gcode.3mf"],
    ["f.gcode.3mf", "--layers"],
    ["--json", "f.gcode.3mf"],
    ["--layers", "--json", "f.gcode.3mf", "--layers"],
    ["f.gcode.3mf", "--plate", "2"],
    ["--plate", "Metadata/plate_2.gcode", "f.gcode.3mf", "--json"],
    ["--plate=3", "f.gcode.3mf"],
    ["--plate=", "f.gcode.3mf"],
    ["a file with spaces.gcode"],
    [""],
]
DECLINED = [
    [],  # no file: argparse's error
    ["--help"],
    ["f.gcode.3mf", "-h"],
    ["f.gcode.3mf", "--lay"],  # an abbreviation argparse accepts
    ["f.gcode.3mf", "--plate"],  # no value: argparse's error
    ["f.gcode.3mf", "--plate", "-1"],
    ["f.gcode.3mf", "--plate=-1"],
    ["f.gcode.3mf", "--plate", "1", "--plate", "2"],
    ["-", "f.gcode.3mf"],
    ["--", "-f.gcode"],
    ["a.gcode", "b.gcode"],  # argparse's "unrecognized arguments"
    ["f.gcode.3mf", "--verbose"],
]


@pytest.mark.parametrize("argv", ACCEPTED)
def test_the_usual_forms_read_as_argparse_reads_them(argv: list[str]) -> None:
    quick = quick_args(argv)
    assert quick is not None
    parsed = vars(build_parser("analyze").parse_args(["analyze", *argv]))
    expected = {key: parsed[key] for key in ("file", "plate", "layers", "json")}
    assert vars(quick) == expected


@pytest.mark.parametrize("argv", DECLINED)
def test_every_other_form_is_left_to_argparse(argv: list[str]) -> None:
    assert quick_args(argv) is None
