"""`layerwise analyze` names a file as pathlib would show it (without importing pathlib), takes any file with
a zip end record for an archive (its damage then named by the archive reader), analyses a small file
without loading numpy (the start-up it would cost), and never prints non-standard JSON. Written from
survivors of the mutation run (issue 16, point 6)."""

from __future__ import annotations

import io
import itertools
import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from server.analysis.cli import _as_pathlib_shows, _name
from server.analysis.zipreader import is_zipfile
from server.cli import main

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "tests" / "fixtures" / "print-files" / "p1s-2colour-bs2.05.gcode.3mf"  # 80 KB


def test_a_path_is_shown_and_named_as_pathlib_does() -> None:
    """Every path of up to 5 characters from "/", "." and "a": roots "/" and "//" (but "///" is "/"),
    empty and "." parts dropped, ".." kept, "." for nothing left; the name is the last part, "" for none."""
    for length in range(6):
        for letters in itertools.product("/.a", repeat=length):
            path = "".join(letters)
            assert _as_pathlib_shows(path) == str(PurePosixPath(path)), path
            assert _name(path) == PurePosixPath(path).name, path


def test_a_binary_file_is_named_in_the_refusal_as_pathlib_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0\0\x10JFIF\0")
    monkeypatch.chdir(tmp_path)
    typed = {  # as typed -> as named
        f"/{photo}": f"/{photo}",  # "//" is a root of its own (POSIX leaves its meaning to the system)
        f"///{tmp_path}//./photo.jpg": str(photo),
        "./photo.jpg": "photo.jpg",
        "photo.jpg": "photo.jpg",
    }
    for path, shown in typed.items():
        assert main(["analyze", path]) == 1
        assert capsys.readouterr().err == (
            f"layerwise analyze: {shown} is neither a .gcode nor a .gcode.3mf file (it holds binary data)\n")


def test_the_summary_is_headed_by_the_files_name_however_its_path_is_typed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(SMALL.parent)
    for path in (f"/{SMALL}", f".//{SMALL.name}", f"../{SMALL.parent.name}/./{SMALL.name}"):
        assert main(["analyze", path]) == 0
        assert capsys.readouterr().out.startswith(f"{SMALL.name}, plate 1: 100 layers, sliced by BambuStudio")


def test_a_damaged_archive_is_refused_for_its_damage_not_as_binary_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An archive whose end record names another disk (a spanned archive) is a zip all the same, as
    zipfile.is_zipfile says: the archive reader says what is wrong with it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("Metadata/plate_1.gcode", b"T0\nM73 L1\nG1 X1 E1\n")
    data = bytearray(buf.getvalue())
    end = data.rindex(b"PK\x05\x06")
    data[end + 4 : end + 6] = struct.pack("<H", 1)  # the number of this disk
    path = tmp_path / "spanned.gcode.3mf"
    path.write_bytes(bytes(data))
    assert zipfile.is_zipfile(path) and is_zipfile(str(path))
    assert main(["analyze", str(path)]) == 1
    assert capsys.readouterr().err == (
        "layerwise analyze: archive is truncated or corrupt: archives that span several disks are not supported\n")


@pytest.mark.parametrize("args", [[], ["--json"]], ids=["summary", "json"])
def test_a_small_file_is_analysed_without_loading_numpy(args: list[str]) -> None:
    """Below VECTOR_FROM_BYTES numpy's import costs more than it saves: the command (a one-shot process)
    leaves it out, where the tracker, analysing many files, uses it."""
    code = ("import sys; from server.cli import main; "
            f"rc = main(['analyze', {str(SMALL)!r}, *{args!r}]); print(rc, 'numpy' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stderr == "0 False\n"


def test_a_slicer_figure_too_large_to_be_real_counts_as_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """slice_info's used_m of 1e307 is a finite number, but 1e307 m in mm is not (it was shown as ``inf``,
    and --json refused with the json module's words): nonsense, so missing like any unreadable figure.
    --json prints strict JSON (no Infinity or NaN, which JSON does not have)."""
    info = ('<?xml version="1.0" encoding="UTF-8"?><config><plate><metadata key="index" value="1"/>'
            '<filament id="1" type="PLA" color="#FFFFFF" used_m="1e307" used_g="1e300"/></plate></config>')
    path = tmp_path / "overflow.gcode.3mf"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("Metadata/plate_1.gcode", b"T0\nM73 L1\nG1 X1 E5\nM73 L2\nG1 X1 E1\n")
        archive.writestr("Metadata/slice_info.config", info)

    def not_json(constant: str) -> object:
        raise AssertionError(f"{constant} is not JSON")

    assert main(["analyze", str(path), "--json"]) == 0
    (filament,) = json.loads(capsys.readouterr().out, parse_constant=not_json)["filaments"]
    assert filament["slicer_mm"] is None and filament["slicer_g"] is None
    assert filament["mm"] == 6.0 and filament["type"] == "PLA"
    assert main(["analyze", str(path)]) == 0
    assert "inf" not in capsys.readouterr().out
