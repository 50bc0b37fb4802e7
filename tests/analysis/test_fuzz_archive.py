"""Fuzz of the archive reader and the analyse path (issue 9): whatever the bytes, analyze_file,
read_metadata and plate_thumbnail return a sane result or raise a specific AnalysisError with a
one-line message. Nothing else escapes, and the last-resort AnalysisFailed never fires: each kind of
bad input has its own class and message.

Inputs: byte-level damage to a real .gcode.3mf (flips, cuts, lying size fields), real archives
rebuilt with a member mutated (hostile gcode lines, broken metadata, other compression methods,
renamed plates), synthetic zips (odd member names, nested paths, plate names with thousands of
digits, zip bombs with honest or lying headers), and bytes that are no zip at all.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.analysis import (
    AnalysisError,
    AnalysisFailed,
    PrintAnalysis,
    TruncatedArchive,
    UnsafeArchive,
    analyze_file,
    plate_thumbnail,
    read_metadata,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "print-files"
REAL = FIXTURES / "testqube-a1-4colour-bs2.04.gcode.3mf"  # the smallest multi-colour sample: fast
REAL_BYTES = REAL.read_bytes()
with zipfile.ZipFile(REAL) as _archive:
    MEMBERS = {info.filename: _archive.read(info) for info in _archive.infolist()}
GCODE_MEMBER = "Metadata/plate_1.gcode"
GCODE_LINES = MEMBERS[GCODE_MEMBER].split(b"\n")
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HOSTILE_LINES = st.sampled_from(
    [
        b"G1 X1 E" + b"9" * 400,
        b"  G1 X1 E-" + b"9" * 400,
        b"G1 E150000",
        b";VG1 E" + b"9" * 400,
        b"M620.11 S1 E" + b"9" * 400,
        b"G92 E" + b"9" * 400,
        b"M82",
        b"M83",
        b"M73 L" + b"9" * 5000,
        b"M73 L200001",
        b"M73 L-3",
        b"M73 P" + b"9" * 400,
        b"M73 P-1",
        b"T" + b"9" * 5000,
        b"T255",
        b"T3",
        b"M628 S1",
        b"M629",
        b"N" + b"9" * 5000 + b" G1 E1*12",
        b"G1 Enan",
        b"G1 Einf",
        b"G1 E1e308",
        b"; total layer number: " + b"9" * 400,
        b"; filament_density: " + b"9" * 400,
        b"; filament: 1," + b"9" * 5000,
        b"\x00\xff\xfe",
        b"\r",
        b"",
    ]
)
GCODE_LINE = st.one_of(HOSTILE_LINES, st.sampled_from(GCODE_LINES[:400]), st.binary(max_size=30))
PLATE_NAMES = st.sampled_from(
    [
        "Metadata/plate_1.gcode",
        "Metadata/plate_2.gcode",
        "Metadata/plate_01.gcode",
        "Metadata/plate_0.gcode",
        "Metadata/plate_" + "7" * 5000 + ".gcode",
        "Metadata/plate_\u0663.gcode",
        "Metadata/plate_-1.gcode",
        "a/b/c/Metadata/plate_1.gcode",
        "Metadata//plate_1.gcode",
        "Metadata/plate_1.gcode/",
        "../Metadata/plate_1.gcode",
        "Metadata/plate_1.gcode.md5",
        "Metadata/plate_1.json",
        "Metadata/slice_info.config",
        "Metadata/project_settings.config",
        "Metadata/model_settings.config",
        "Metadata/plate_1.png",
        "x" * 60000,
        "\u00e9\u00e8/\U0001f600.gcode",
    ]
)
PLATES = st.sampled_from([None, 1, 2, 0, -1, 10**20, "1", "2", "01", "7" * 5000, "\u00b2", "Metadata/plate_1.gcode",
                          "Metadata/plate_" + "7" * 5000 + ".gcode", "", "x"])
METHODS = st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])


def _check(call: Callable[[], object]) -> None:
    try:
        result = call()
    except AnalysisFailed as err:  # a surprise: bad input that has no specific class and message yet
        raise AssertionError(f"{err} <- {err.__cause__!r}") from err.__cause__
    except AnalysisError as err:
        assert str(err) and "\n" not in str(err)
        return
    if isinstance(result, PrintAnalysis):
        assert result.layer_count >= 1
        json.dumps(result.to_json(), allow_nan=False)  # no Infinity/NaN can reach a bill


def _all_readers(data: bytes, plate: int | str | None = None, name: str = "fuzz.gcode.3mf") -> None:
    for reader in (analyze_file, read_metadata, plate_thumbnail):
        stream = io.BytesIO(data)
        stream.name = name
        _check(lambda reader=reader, stream=stream: reader(stream, plate))  # type: ignore[misc]


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _patch_sizes(data: bytes, member: str, declared: int, compressed: int | None) -> bytes:
    """Make the local and central headers of ``member`` lie about its sizes."""
    raw = bytearray(data)
    name = member.encode()
    for magic, size_at in ((b"PK\x03\x04", 18), (b"PK\x01\x02", 20)):
        start = 0
        while (at := raw.find(magic, start)) >= 0:
            start = at + 4
            name_at = at + (30 if magic == b"PK\x03\x04" else 46)
            if raw[name_at : name_at + len(name)] == name:
                if compressed is not None:
                    raw[at + size_at : at + size_at + 4] = struct.pack("<I", compressed)
                raw[at + size_at + 4 : at + size_at + 8] = struct.pack("<I", declared)
    return bytes(raw)


@FUZZ
@given(
    flips=st.lists(st.tuples(st.integers(0, len(REAL_BYTES) - 1), st.integers(1, 255)), max_size=6),
    tail_flips=st.lists(st.tuples(st.integers(1, 3000), st.integers(1, 255)), max_size=6),
    cut=st.one_of(st.none(), st.integers(0, len(REAL_BYTES))),
    plate=PLATES,
)
def test_damaged_real_archive(flips: list[tuple[int, int]], tail_flips: list[tuple[int, int]], cut: int | None,
                              plate: int | str | None) -> None:
    raw = bytearray(REAL_BYTES)
    for at, mask in flips:
        raw[at] ^= mask
    for back, mask in tail_flips:  # the central directory sits at the end
        raw[-back] ^= mask
    _all_readers(bytes(raw[:cut]), plate)


@FUZZ
@given(
    target=st.sampled_from(sorted(MEMBERS)),
    inserts=st.lists(st.tuples(st.integers(0, len(GCODE_LINES)), GCODE_LINE), max_size=8),
    flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 1 << 18)),
    method=METHODS,
    rename=st.one_of(st.none(), PLATE_NAMES),
    keep_md5=st.booleans(),
    plate=PLATES,
)
def test_real_archive_with_a_mutated_member(target: str, inserts: list[tuple[int, bytes]],
                                            flips: list[tuple[int, int]], cut: int | None, method: int,
                                            rename: str | None, keep_md5: bool, plate: int | str | None) -> None:
    members = dict(MEMBERS)
    if target == GCODE_MEMBER:
        lines = list(GCODE_LINES)
        for at, line in sorted(inserts, reverse=True):
            lines.insert(at, line)
        content = bytearray(b"\n".join(lines))
    else:
        content = bytearray(members[target])
    for at, mask in flips:
        if content:
            content[at % len(content)] ^= mask
    members[target] = bytes(content[:cut])
    if not keep_md5:
        members.pop("Metadata/plate_1.gcode.md5", None)
    if rename is not None and target in members:
        members[rename] = members.pop(target)
    _all_readers(_zip(members, method), plate)


MEMBER = st.tuples(
    PLATE_NAMES,
    st.one_of(st.lists(GCODE_LINE, max_size=40).map(b"\n".join), st.binary(max_size=200)),
)


@FUZZ
@given(members=st.lists(MEMBER, max_size=6), method=METHODS, plate=PLATES)
def test_synthetic_archives(members: list[tuple[str, bytes]], method: int, plate: int | str | None) -> None:
    _all_readers(_zip(dict(members), method), plate)


@FUZZ
@given(
    size=st.integers(1 << 10, 8 << 20),
    declared=st.integers(0, 2**32 - 1),
    compressed=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    filler=st.sampled_from([b"\0", b"G1 X1 Y1\n", b"M73 L1\nG1 E0.0001\n"]),
)
def test_zip_bombs_with_honest_or_lying_headers(size: int, declared: int, compressed: int | None,
                                                filler: bytes) -> None:
    body = b"T0\nM73 L1\n" + filler * (size // len(filler))
    data = _zip({GCODE_MEMBER: body, "Metadata/plate_1.json": b"{}"})
    _all_readers(_patch_sizes(data, GCODE_MEMBER, declared, compressed))


@FUZZ
@given(data=st.binary(max_size=4000), name=st.sampled_from(["x.gcode.3mf", "x.gcode", ""]), plate=PLATES)
def test_bytes_that_are_no_zip(data: bytes, name: str, plate: int | str | None) -> None:
    _all_readers(b"PK\x03\x04" + data if data[:1] == b"P" else data, plate, name)


def test_a_declared_bomb_is_refused_before_inflating() -> None:
    data = _zip({GCODE_MEMBER: b"T0\nM73 L1\n" + b"\0" * (8 << 20)})
    with pytest.raises(UnsafeArchive, match="ratio"):
        analyze_file(io.BytesIO(data))
    # Claiming 1000 bytes: zipfile inflates no more than the header says, and the CRC shows the lie.
    lying = _patch_sizes(data, GCODE_MEMBER, 1000, None)
    with pytest.raises(TruncatedArchive, match="CRC"):
        analyze_file(io.BytesIO(lying))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(members=st.lists(MEMBER, max_size=4), method=METHODS, cut=st.one_of(st.none(), st.integers(0, 4000)))
def test_the_cli_answers_rc_0_or_one_line_and_rc_1(members: list[tuple[str, bytes]], method: int,
                                                    cut: int | None) -> None:
    import contextlib
    import tempfile

    from server.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.gcode.3mf"
        path.write_bytes(_zip(dict(members), method)[:cut])
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["analyze", str(path), "--json"])
    if rc == 0:
        assert err.getvalue() == "" and json.loads(out.getvalue())["layer_count"] >= 1
    else:
        lines = err.getvalue().splitlines()
        assert rc == 1 and len(lines) == 1 and lines[0].startswith("layerwise analyze: ")
        assert "cannot analyse the file" not in lines[0]  # AnalysisFailed: a surprise
