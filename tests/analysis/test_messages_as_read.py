"""The analysis's messages as a person reads them, through the public API only (analyze_file,
analyze_gcode_stream): which line an absurd extrusion or an overlong line is blamed on, the figures in
the message, the quoted excerpt (cut after 40 characters, undecodable bytes shown, not fatal), a read
error's cause (one line, cut after 160 characters), a file object's name deciding whether it must be a
zip, a stream with no end refused at the size cap, the caller's file left open, the plates an archive
holds when the one asked for is not there, and a zip bomb's ratio. Written from
survivors of the full mutation run (issue 16, point 6); the expected messages are spelt out here."""

from __future__ import annotations

import errno
import io
import zipfile
from pathlib import Path

import pytest

from server.analysis import (
    AnalysisError,
    Limits,
    NotAZip,
    PlateNotFound,
    TruncatedArchive,
    UnsafeArchive,
    analyze_file,
    analyze_gcode_stream,
)
from server.analysis.errors import AbsurdExtrusion, LineTooLong

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "print-files"
GCODE = b"G1 E5\nM73 L1\nG1 X1 E2.5\nM73 L2\nG1 X2 E1\n"
LIMIT = "(the limit is 100 m): not a real print"


def _refusal(data: bytes, vectorised: bool) -> tuple[type, str]:
    with pytest.raises(AnalysisError) as caught:
        analyze_gcode_stream([data], vectorised=vectorised)
    return type(caught.value), str(caught.value)


BOTH = pytest.mark.parametrize("vectorised", [True, False], ids=["numpy", "regex"])


@BOTH
def test_an_absurd_move_is_named_with_its_line_layer_and_figures(vectorised: bool) -> None:
    # A blank first line still counts: the move is on line 4.
    assert _refusal(b"\nG1 E5\nM73 L1\nT0\nG1 X1 E1000000\n", vectorised) == (
        AbsurdExtrusion, f"line 5 (layer 1): 'G1 X1 E1000000' brings filament 1 to 1000 m in one layer {LIMIT}")


@BOTH
def test_moves_adding_up_past_the_bound_blame_the_move_that_crosses_it(vectorised: bool) -> None:
    # 100 m in one move is allowed (the bound is inclusive); the next millimetre crosses it.
    assert _refusal(b"M73 L1\nT0\nG1 X1 E100000\nG1 X2 E1\n", vectorised) == (
        AbsurdExtrusion, f"line 4 (layer 1): 'G1 X2 E1' brings filament 1 to 100 m in one layer {LIMIT}")


@BOTH
def test_a_move_before_any_filament_is_loaded_names_no_number(vectorised: bool) -> None:
    # Filaments are numbered from 1 in messages, as `layerwise analyze` shows them; before any T there is none.
    assert _refusal(b"M73 L1\nG1 X1 E200000\n", vectorised) == (
        AbsurdExtrusion,
        f"line 2 (layer 1): 'G1 X1 E200000' brings the filament before any T command to 200 m in one layer {LIMIT}")


@BOTH
def test_a_non_finite_move_says_so(vectorised: bool) -> None:
    assert _refusal(b"M73 L1\nT0\nG1 X1 E" + b"9" * 400 + b"\n", vectorised) == (
        AbsurdExtrusion,
        "line 3 (layer 1): 'G1 X1 E999999999999999999999999999999999...' extrudes a non-finite amount of "
        "filament: not a real print")


@BOTH
@pytest.mark.parametrize(("comment", "shown"), [
    (b"c" * 24, "'G1 X1 E200000 ; " + "c" * 24 + "'"),  # 40 characters: quoted whole
    (b"c" * 25, "'G1 X1 E200000 ; " + "c" * 24 + "...'"),  # 41: cut after 40
    (b"\xff", "'G1 X1 E200000 ; \ufffd'"),  # not UTF-8: shown replaced, still the same refusal
], ids=["40", "41", "not-utf8"])
def test_the_excerpt_is_quoted_and_cut_after_40_characters(vectorised: bool, comment: bytes, shown: str) -> None:
    kind, message = _refusal(b"M73 L1\nT0\nG1 X1 E200000 ; " + comment + b"\n", vectorised)
    assert kind is AbsurdExtrusion
    assert message == f"line 3 (layer 1): {shown} brings filament 1 to 200 m in one layer {LIMIT}"


@BOTH
def test_an_overlong_line_is_named_by_its_number(vectorised: bool) -> None:
    long = b"; " + b"x" * (256 << 10) + b"\n"
    expected = "is longer than 256 KiB (real gcode lines are far shorter): not a gcode file"
    assert _refusal(b"\n" + long + GCODE, vectorised) == (LineTooLong, f"line 2 {expected}")
    assert _refusal(b"G1 E5\nM73 L1\n" + long + GCODE, vectorised) == (LineTooLong, f"line 3 {expected}")


# -- reading: file objects, read errors ------------------------------------------------------------
class _FailingRead(io.BytesIO):
    """A file whose reads fail with ``error`` from the ``fail_at``-th read on (the first ones sniff the head)."""

    def __init__(self, data: bytes, error: OSError, fail_at: int = 2) -> None:
        super().__init__(data)
        self.error, self.fail_at, self.reads = error, fail_at, 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        if self.reads >= self.fail_at:
            raise self.error
        return super().read(size)


def test_a_read_error_in_a_plain_gcode_names_its_cause() -> None:
    source = _FailingRead(GCODE, OSError(errno.EIO, "Input/output error"))
    with pytest.raises(AnalysisError, match=r"^cannot read the file: Input/output error$"):
        analyze_file(source)


def test_the_callers_file_object_is_left_open(tmp_path: Path) -> None:
    path = tmp_path / "plain.gcode"
    path.write_bytes(GCODE)
    with path.open("rb") as fh:
        assert analyze_file(fh).layer_count == 2
        assert not fh.closed


def test_a_file_object_is_judged_by_its_name(tmp_path: Path) -> None:
    """A file object named .3mf must be a zip; one without a name (BytesIO) is read as gcode."""
    path = tmp_path / "print.gcode.3mf"
    path.write_bytes(GCODE)
    with path.open("rb") as fh, pytest.raises(NotAZip, match=r"^not a zip archive \(a \.gcode\.3mf is a zip\)$"):
        analyze_file(fh)
    assert analyze_file(io.BytesIO(GCODE)).layer_count == 2


class _Endless(io.RawIOBase):
    """A stream with no end (a pipe from a process that keeps writing): reading it to its end never returns."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return 0

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            pytest.fail("read to the end of an endless stream")
        return (b"G1 X1 E0.001\n" * (size // 13 + 1))[:size]


def test_an_endless_stream_is_refused_at_the_size_cap() -> None:
    with pytest.raises(UnsafeArchive, match=r"^gcode is larger than the cap of 100000 bytes$"):
        analyze_file(_Endless(), limits=Limits(max_gcode_bytes=100_000, chunk_size=4096))


def _archive_failing_in_the_gcode(tmp_path: Path, error: OSError) -> io.BytesIO:
    """A good archive in a file object whose reads fail with ``error`` inside the plate's gcode data."""
    path = tmp_path / "p.gcode.3mf"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("Metadata/plate_1.gcode", GCODE * 200)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("Metadata/plate_1.gcode")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    end = start + info.compress_size

    class Failing(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if start <= self.tell() < end:
                raise error
            return super().read(size)

    return Failing(path.read_bytes())


@pytest.mark.parametrize(("cause", "shown"), [
    ("the disk\n   went   away", "the disk went away"),  # one line, single spaces
    ("", "OSError"),  # no words: the error's kind
    ("x" * 160, "x" * 160),  # up to 160 characters: whole
    ("y" * 161, "y" * 160 + "..."),  # longer: cut after 160
], ids=["spaces", "empty", "160", "161"])
def test_a_read_error_inside_an_archive_is_one_line_cut_after_160_characters(
        tmp_path: Path, cause: str, shown: str) -> None:
    source = _archive_failing_in_the_gcode(tmp_path, OSError(cause))
    with pytest.raises(TruncatedArchive) as caught:
        analyze_file(source)
    message = str(caught.value)
    assert message.startswith("Metadata/plate_1.gcode is truncated or corrupt: ")
    assert message.removeprefix("Metadata/plate_1.gcode is truncated or corrupt: ") == shown


def test_a_layer_outside_the_print_is_refused_by_number() -> None:
    analysis = analyze_file(FIXTURES / "p2s-example-bs2.05.gcode.3mf")
    for n in (0, 31):
        with pytest.raises(IndexError, match=rf"^layer {n} is outside 1\.\.30$"):
            analysis.layer(n)
    assert repr(analysis).startswith("PrintAnalysis(layer_count=30, plate=1, gcode_md5=")


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_an_archive_without_plates_says_which_member_it_looked_for(tmp_path: Path) -> None:
    path = _zip(tmp_path / "e.gcode.3mf", {"3D/3dmodel.model": b"<model/>"})
    with pytest.raises(PlateNotFound, match=r"^the archive holds no sliced plate \(no Metadata/plate_N\.gcode\)$"):
        analyze_file(path)


def test_a_missing_plate_lists_the_plates_there_are(tmp_path: Path) -> None:
    """Several plates are listed comma separated; an archive with none says none."""
    path = _zip(tmp_path / "p.gcode.3mf", {"Metadata/plate_3.gcode": GCODE, "Metadata/plate_1.gcode": GCODE})
    with pytest.raises(PlateNotFound, match=r"^plate 2 is not in the archive \(plates: 1, 3\)$"):
        analyze_file(path, 2)
    empty = _zip(tmp_path / "e.gcode.3mf", {"3D/3dmodel.model": b"<model/>"})
    with pytest.raises(PlateNotFound, match=r"^plate 2 is not in the archive \(plates: none\)$"):
        analyze_file(empty, 2)


def test_a_zip_bomb_is_refused_with_its_ratio(tmp_path: Path) -> None:
    """The ratio shown is the directory's inflated size over its compressed size, rounded."""
    path = _zip(tmp_path / "b.gcode.3mf", {"Metadata/plate_1.gcode": GCODE + b";" * 20_000})
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("Metadata/plate_1.gcode")
    ratio = round(info.file_size / info.compress_size)
    assert ratio > 10  # far past max_ratio=2: refused by the directory check, before any inflating
    with pytest.raises(UnsafeArchive, match=rf"^Metadata/plate_1\.gcode has compression ratio {ratio} \(zip bomb\?\)$"):
        analyze_file(path, limits=Limits(max_ratio=2.0))
