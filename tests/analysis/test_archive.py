"""Hostile and broken input: each gets its own error type and a clear message, never a hang or crash."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from server.analysis import (
    AnalysisError,
    ChecksumMismatch,
    Limits,
    NotAZip,
    PlateNotFound,
    TruncatedArchive,
    UnsafeArchive,
    analyze_file,
    plate_thumbnail,
    read_metadata,
)
from server.analysis.archive import _inflate, file_chunks, open_archive, plate_gcode, plate_number

FIXTURES = Path(__file__).parents[1] / "fixtures" / "print-files"
XMAS = FIXTURES / "xmas-pud-x1c-4colour.gcode.3mf"
GCODE = b"M620 S0A\nT0\nG1 E5\nM73 L1\nG1 X1 E2.5\n"


def make_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "junk.gcode.3mf"
    path.write_bytes(b"this is no archive at all" * 10)
    with pytest.raises(NotAZip, match="not a zip"):
        analyze_file(path)


def test_missing_plate(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "p.gcode.3mf", {"Metadata/plate_1.gcode": GCODE})
    with pytest.raises(PlateNotFound, match=r"plate 2 is not in the archive \(plates: 1\)"):
        analyze_file(path, 2)
    empty = make_zip(tmp_path / "e.gcode.3mf", {"3D/3dmodel.model": b"<model/>"})
    with pytest.raises(PlateNotFound, match="no sliced plate"):
        analyze_file(empty)
    with pytest.raises(PlateNotFound):
        analyze_file(path, "Metadata/model.xml")


@pytest.mark.parametrize("name", ["../evil.gcode", "Metadata/../../evil", "/etc/passwd", "C:/evil", "a\\..\\b"])
def test_path_traversal_member(tmp_path: Path, name: str) -> None:
    path = make_zip(tmp_path / "t.gcode.3mf", {"Metadata/plate_1.gcode": GCODE, name: b"x"})
    with pytest.raises(UnsafeArchive, match="path traversal"):
        analyze_file(path)


def test_size_cap_from_header(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "big.gcode.3mf", {"Metadata/plate_1.gcode": GCODE * 100})
    with pytest.raises(UnsafeArchive, match="cap"):
        analyze_file(path, limits=Limits(max_gcode_bytes=1000))


def test_size_cap_while_reading_even_if_header_lies(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "big.gcode.3mf", {"Metadata/plate_1.gcode": GCODE * 100})
    with open_archive(path) as archive:
        info = archive.getinfo("Metadata/plate_1.gcode")
        with pytest.raises(UnsafeArchive, match="beyond the cap"):
            list(_inflate(archive, info, 1000, Limits(chunk_size=256)))


def test_zip_bomb_ratio(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "bomb.gcode.3mf", {"Metadata/plate_1.gcode": b"G1 E0\n" + b"\0" * (8 << 20)})
    with pytest.raises(UnsafeArchive, match="ratio"):
        analyze_file(path)


def test_plain_gcode_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.gcode"
    path.write_bytes(GCODE * 100)
    with pytest.raises(UnsafeArchive):
        analyze_file(path, limits=Limits(max_gcode_bytes=1000, chunk_size=256))


def test_plain_gcode_exactly_at_the_size_cap_is_read(tmp_path: Path) -> None:
    path = tmp_path / "full.gcode"
    path.write_bytes(GCODE * 10)
    size = len(GCODE) * 10
    assert analyze_file(path, limits=Limits(max_gcode_bytes=size, chunk_size=256)).layer_count > 0
    with pytest.raises(UnsafeArchive, match=f"cap of {size - 1} bytes"):
        analyze_file(path, limits=Limits(max_gcode_bytes=size - 1, chunk_size=256))


def test_a_missing_plain_gcode_says_it_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="cannot read the file: No such file or directory"):
        analyze_file(tmp_path / "gone.gcode")
    # Also when it goes between the zip check and the read (the reader opens the file itself).
    with pytest.raises(AnalysisError, match="cannot read the file: No such file or directory"):
        next(file_chunks(tmp_path / "gone.gcode"))


def test_truncated_archive(tmp_path: Path) -> None:
    data = XMAS.read_bytes()
    path = tmp_path / "cut.gcode.3mf"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedArchive, match="truncated"):
        analyze_file(path)


def test_corrupt_deflate_data(tmp_path: Path) -> None:
    data = bytearray(XMAS.read_bytes())
    with zipfile.ZipFile(XMAS) as archive:
        info = archive.getinfo("Metadata/plate_1.gcode")
    # Damage the middle of the compressed gcode (local header is 30 bytes + name + extra).
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    for i in range(middle, middle + 64):
        data[i] ^= 0x5A
    path = tmp_path / "bad.gcode.3mf"
    path.write_bytes(bytes(data))
    with pytest.raises(TruncatedArchive):
        analyze_file(path)


def test_md5_mismatch(tmp_path: Path) -> None:
    wrong = hashlib.md5(b"something else").hexdigest().upper().encode()
    path = make_zip(tmp_path / "m.gcode.3mf", {"Metadata/plate_1.gcode": GCODE, "Metadata/plate_1.gcode.md5": wrong})
    with pytest.raises(ChecksumMismatch, match="MD5"):
        analyze_file(path)


def test_md5_match_and_gcode_md5(tmp_path: Path) -> None:
    right = hashlib.md5(GCODE).hexdigest().upper().encode()
    path = make_zip(tmp_path / "m.gcode.3mf", {"Metadata/plate_1.gcode": GCODE, "Metadata/plate_1.gcode.md5": right})
    analysis = analyze_file(path)
    assert analysis.gcode_md5 == hashlib.md5(GCODE).hexdigest()
    assert analysis.layer(1) == {0: 2.5}


def test_the_checksum_member_is_read_under_the_callers_limits(tmp_path: Path) -> None:
    """Every member is read under the limits the caller gives, the plate's .md5 included: a checksum member
    padded past ``max_metadata_bytes`` is refused, naming it, as any other oversized metadata member is."""
    right = hashlib.md5(GCODE).hexdigest().upper().encode()
    padded = right + b" " * 2000  # stored, not deflated: only the size cap can refuse it, not the ratio
    path = make_zip(tmp_path / "m.gcode.3mf", {"Metadata/plate_1.gcode": GCODE, "Metadata/plate_1.gcode.md5": padded},
                    zipfile.ZIP_STORED)
    assert analyze_file(path).gcode_md5 == hashlib.md5(GCODE).hexdigest()  # within the default limits
    with pytest.raises(UnsafeArchive, match=r"plate_1\.gcode\.md5 inflates to 2032 bytes \(cap 1000\)"):
        analyze_file(path, limits=Limits(max_metadata_bytes=1000))


def test_reading_the_metadata_never_reads_the_checksum_member(tmp_path: Path) -> None:
    """read_metadata reads the gcode's head only, so it checks no checksum: an oversized or wrong .md5 member
    does not stop it (it refused the file the summary without checksum accepts)."""
    header = b"; HEADER_BLOCK_START\n; total layer number: 1\n; HEADER_BLOCK_END\n"
    path = make_zip(tmp_path / "m.gcode.3mf", {"Metadata/plate_1.gcode": header + GCODE,
                                               "Metadata/plate_1.gcode.md5": b"0" * 2000}, zipfile.ZIP_STORED)
    assert read_metadata(path, limits=Limits(max_metadata_bytes=1000)).plate == 1
    assert analyze_file(path, hashed=False, limits=Limits(max_metadata_bytes=1000)).layer(1) == {0: 2.5}


def test_unhashed_analysis_has_the_same_figures_and_no_md5(tmp_path: Path) -> None:
    """hashed=False (layerwise analyze's summary): no MD5 computed nor checked; the figures are the same."""
    wrong = hashlib.md5(b"something else").hexdigest().encode()
    path = make_zip(tmp_path / "m.gcode.3mf", {"Metadata/plate_1.gcode": GCODE, "Metadata/plate_1.gcode.md5": wrong})
    analysis = analyze_file(path, hashed=False)
    assert analysis.gcode_md5 == ""
    assert analysis.layer(1) == {0: 2.5}
    hashed, unhashed = analyze_file(XMAS).to_json(), analyze_file(XMAS, hashed=False).to_json()
    assert hashed["gcode_md5"] and unhashed["gcode_md5"] == ""
    assert {**hashed, "gcode_md5": ""} == unhashed


def test_unhashed_analysis_still_refuses_a_damaged_member(tmp_path: Path) -> None:
    """Without the MD5, zipfile's CRC-32 still tells a damaged member."""
    path = make_zip(tmp_path / "m.gcode.3mf", {"Metadata/plate_1.gcode": GCODE * 50}, zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    at = data.find(b"G1 X1 E2.5")
    data[at + 4] = ord("7")  # same length, so only the CRC can tell
    path.write_bytes(bytes(data))
    with pytest.raises(TruncatedArchive, match=r"CRC|corrupt"):
        analyze_file(path, hashed=False)


def test_errors_share_a_base_and_have_one_line_messages(tmp_path: Path) -> None:
    path = tmp_path / "junk.gcode.3mf"
    path.write_bytes(b"junk")
    with pytest.raises(AnalysisError) as caught:
        analyze_file(path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("plate", [None, 1, "1", "Metadata/plate_1.gcode", "/data/Metadata/plate_1.gcode"])
def test_plate_forms(plate: int | str | None) -> None:
    assert plate_number(plate) in (None, 1)
    assert analyze_file(XMAS, plate).plate == 1


def test_path_file_object_and_bytesio_agree() -> None:
    by_path = analyze_file(XMAS)
    with XMAS.open("rb") as fh:
        assert analyze_file(fh) == by_path
    assert analyze_file(io.BytesIO(XMAS.read_bytes())) == by_path


def test_multi_plate_archive_picks_the_plate(tmp_path: Path) -> None:
    path = make_zip(
        tmp_path / "two.gcode.3mf",
        {"Metadata/plate_1.gcode": b"T0\nM73 L1\nG1 E1\n", "Metadata/plate_2.gcode": b"T1\nM73 L1\nG1 E2\n"},
    )
    assert analyze_file(path).filaments[0].mm == 1.0
    assert analyze_file(path, "Metadata/plate_2.gcode").filaments[1].mm == 2.0


def test_thumbnail_and_metadata() -> None:
    png = plate_thumbnail(XMAS, 1)
    assert png is not None and png.startswith(b"\x89PNG")
    meta = read_metadata(XMAS, 1)
    assert meta.prediction_s == 11151
    assert meta.used_filaments() == (0, 1, 2, 9)
    assert meta.header.layer_count == 192
    assert plate_thumbnail(FIXTURES / "p1s-2colour-orca2.4.1.gcode") is None


def test_thumbnail_size_cap_and_png_only(tmp_path: Path) -> None:
    gcode = {"Metadata/plate_1.gcode": b"T0\nM73 L1\nG1 E1\n"}
    small = make_zip(tmp_path / "small.gcode.3mf", {**gcode, "Metadata/plate_1.png": b"\x89PNG\r\n\x1a\n" + b"x" * 100})
    assert plate_thumbnail(small, 1) == b"\x89PNG\r\n\x1a\n" + b"x" * 100
    not_png = make_zip(tmp_path / "html.gcode.3mf", {**gcode, "Metadata/plate_1.png": b"<svg onload=alert(1)>"})
    assert plate_thumbnail(not_png, 1) is None  # it would be served as image/png
    noise = bytes(range(256))  # does not deflate: the size cap trips, not the ratio check
    big = make_zip(tmp_path / "big.gcode.3mf", {**gcode, "Metadata/plate_1.png": b"\x89PNG\r\n\x1a\n" + noise})
    with pytest.raises(AnalysisError):
        plate_thumbnail(big, 1, limits=Limits(max_thumbnail_bytes=200))


class _UnreadableTail(io.BytesIO):
    """A file whose bytes past ``readable`` cannot be read (a bad sector, a share gone away)."""

    def __init__(self, data: bytes, readable: int) -> None:
        super().__init__(data)
        self.readable = readable

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() >= self.readable:
            raise OSError(5, "Input/output error")
        return super().read(size)


def test_metadata_reads_no_further_than_the_header_mib(tmp_path: Path) -> None:
    """read_metadata reads the gcode's first MiB only (the header and config block): the default chunk is a
    MiB, so once that chunk is in, the rest of a big plain gcode is never read, and a tail that cannot be read
    does not stop the header's figures."""
    mib = 1 << 20
    header = b"; generated by OrcaSlicer 2.1.0\n; filament: 1\n; total filament length [mm] : 123.40\n"
    body = b"M73 L1\nT0\n" + b"G1 X1 E0.1\n" * (3 * mib // 11)
    source = _UnreadableTail(header + body, readable=mib)
    meta = read_metadata(source)
    assert (meta.slicer, meta.header.lengths_mm) == ("OrcaSlicer 2.1.0", {0: 123.4})
    with pytest.raises(AnalysisError, match="cannot read the file: Input/output error"):
        analyze_file(_UnreadableTail(header + body, readable=mib))  # the whole gcode is read: the tail fails


def test_a_plate_exactly_at_the_size_cap_is_read(tmp_path: Path) -> None:
    """The cap is inclusive, as for plain gcode: a plate of exactly max_gcode_bytes is read whole."""
    body = GCODE * 10
    path = make_zip(tmp_path / "full.gcode.3mf", {"Metadata/plate_1.gcode": body})
    limits = Limits(max_gcode_bytes=len(body), chunk_size=256)
    assert analyze_file(path, limits=limits).gcode_md5 == hashlib.md5(body).hexdigest()
    with pytest.raises(UnsafeArchive, match=f"cap {len(body) - 1}"):
        analyze_file(path, limits=limits._replace(max_gcode_bytes=len(body) - 1))


def test_a_plate_exactly_at_the_ratio_cap_is_read(tmp_path: Path) -> None:
    """The ratio cap is inclusive too: a stored plate (ratio 1) is read under max_ratio=1."""
    body = GCODE * 10
    path = make_zip(tmp_path / "stored.gcode.3mf", {"Metadata/plate_1.gcode": body}, zipfile.ZIP_STORED)
    analysis = analyze_file(path, limits=Limits(max_ratio=1.0, chunk_size=256))
    assert analysis.gcode_md5 == hashlib.md5(body).hexdigest()


def test_ratio_while_reading_whatever_the_caller_passes(tmp_path: Path) -> None:
    """The running ratio is enforced by the inflating loop itself, naming the member, as the size cap is."""
    path = make_zip(tmp_path / "big.gcode.3mf", {"Metadata/plate_1.gcode": GCODE * 100})  # deflates >2x
    with open_archive(path) as archive:
        info = archive.getinfo("Metadata/plate_1.gcode")
        with pytest.raises(UnsafeArchive, match=r"^Metadata/plate_1\.gcode inflates beyond ratio 2 \(zip bomb\?\)$"):
            list(_inflate(archive, info, 1 << 20, Limits(max_ratio=2.0, chunk_size=256)))


def test_plate_gcode_checks_the_archives_md5_by_default(tmp_path: Path) -> None:
    wrong = hashlib.md5(b"something else").hexdigest().encode()
    path = make_zip(tmp_path / "m.gcode.3mf", {"Metadata/plate_1.gcode": GCODE, "Metadata/plate_1.gcode.md5": wrong})
    with open_archive(path) as archive, pytest.raises(ChecksumMismatch, match="MD5"):
        b"".join(plate_gcode(archive, 1))
    with open_archive(make_zip(tmp_path / "n.gcode.3mf", {"Metadata/plate_1.gcode": GCODE})) as archive:
        reader = plate_gcode(archive, 1)
        assert b"".join(reader) == GCODE
        assert reader.md5 == hashlib.md5(GCODE).hexdigest()


def test_unhashed_analysis_does_not_read_the_checksum_member(tmp_path: Path) -> None:
    """hashed=False leaves the .md5 member unread: one past max_metadata_bytes does not stop the summary."""
    padded = b"0" * 2000
    path = make_zip(tmp_path / "m.gcode.3mf", {"Metadata/plate_1.gcode": GCODE, "Metadata/plate_1.gcode.md5": padded},
                    zipfile.ZIP_STORED)
    analysis = analyze_file(path, hashed=False, limits=Limits(max_metadata_bytes=1000))
    assert analysis.gcode_md5 == ""
    assert analysis.layer(1) == {0: 2.5}


@pytest.mark.parametrize("empty", [b"", b" \r\n"])
def test_an_empty_checksum_member_checks_nothing(tmp_path: Path, empty: bytes) -> None:
    path = make_zip(tmp_path / "m.gcode.3mf", {"Metadata/plate_1.gcode": GCODE, "Metadata/plate_1.gcode.md5": empty})
    assert analyze_file(path).gcode_md5 == hashlib.md5(GCODE).hexdigest()


def test_a_non_ascii_checksum_member_is_a_mismatch(tmp_path: Path) -> None:
    """A checksum with bytes that are not ASCII cannot match: a ChecksumMismatch, not a decoding failure."""
    digest = b"\xe9" + hashlib.md5(GCODE).hexdigest().encode()[1:]
    path = make_zip(tmp_path / "m.gcode.3mf", {"Metadata/plate_1.gcode": GCODE, "Metadata/plate_1.gcode.md5": digest})
    with pytest.raises(ChecksumMismatch, match=f"the archive says \ufffd{hashlib.md5(GCODE).hexdigest()[1:]}"):
        analyze_file(path)
