"""server.analysis.zipreader against the standard library's zipfile as the oracle.

Archives written by zipfile (random names, stored and deflated members, empty ones, comments, ZIP64
records and extra fields, data prepended) read the same with both. Damaged archives (bytes flipped, cut,
inserted; real and generated ones) give exactly the original content or one of the analysis's errors,
never another exception and never other content. Hand-made hostile archives are refused each with its
error class. The real print files read byte for byte as zipfile reads them.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.analysis import AnalysisError, NotAZip, TruncatedArchive, UnsafeArchive, analyze_file
from server.analysis.archive import DEFAULT_LIMITS, Limits, open_archive, read_member
from server.analysis.zipreader import ZipError, ZipReader, is_zipfile
from tests.zip_bytes import read_back as ours

FIXTURES = Path(__file__).parents[1] / "fixtures" / "print-files"
ARCHIVES = sorted(FIXTURES.glob("*.gcode.3mf"))
SMALL = [FIXTURES / "testqube-a1-1colour-bs2.04.gcode.3mf", FIXTURES / "testqube-a1-4colour-bs2.04.gcode.3mf"]
GCODE = b"M620 S0A\nT0\nG1 E5\nM73 L1\nG1 X1 E2.5\n"
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Everything read whole, however big the members claim to be (the caps have their own tests).
OPEN = Limits(max_metadata_bytes=1 << 40, max_ratio=1e12)


def oracle(data: bytes) -> tuple[list[str], dict[str, bytes], bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.namelist(), {i.filename: archive.read(i) for i in archive.infolist()}, archive.comment


def through_the_analysis(data: bytes) -> dict[str, bytes]:
    """Every member read as the analysis reads them (caps, name checks, error mapping)."""
    with open_archive(io.BytesIO(data), OPEN) as archive:
        return {name: read_member(archive, name, OPEN) or b"" for name in archive.namelist()}


@contextmanager
def zip64_from(size: int, count: int) -> Iterator[None]:
    """zipfile writes ZIP64 records and extra fields from these limits on: small ones force them cheaply."""
    saved = zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = size, count  # type: ignore[attr-defined]
    try:
        yield
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = saved  # type: ignore[attr-defined]


NAMES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\\"), min_size=1, max_size=12)
CONTENT = st.one_of(
    st.binary(max_size=600),
    st.tuples(st.binary(min_size=1, max_size=20), st.integers(1, 400)).map(lambda t: t[0] * t[1]),
    st.just(b""),
)
MEMBERS = st.dictionaries(
    NAMES.filter(lambda n: not n.startswith("/") and ".." not in n.split("/")),
    st.tuples(CONTENT, st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]), st.booleans()),
    max_size=8,
)


def write(members: dict[str, tuple[bytes, int, bool]], comment: bytes = b"", prefix: bytes = b"",
          zip64: tuple[int, int] | None = None) -> bytes:
    out = io.BytesIO()
    with zip64_from(*zip64) if zip64 else nullcontext(), zipfile.ZipFile(out, "w") as archive:
        for name, (content, method, force_zip64) in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            # Under lowered limits zipfile refuses a member over them unless told up front.
            with archive.open(info, "w", force_zip64=force_zip64 or zip64 is not None) as member:
                member.write(content)
        archive.comment = comment
    return prefix + out.getvalue()


GENERATED = st.builds(
    write,
    MEMBERS,
    comment=st.binary(max_size=80).filter(lambda c: b"PK\x05\x06" not in c),
    # (No signatures in the prefix: zipfile itself mistakes one just before a short archive's end record for a
    # ZIP64 locator.)
    prefix=st.one_of(st.just(b""), st.binary(max_size=64).filter(lambda b: b"PK" not in b)),
    zip64=st.one_of(st.none(), st.tuples(st.integers(0, 300), st.integers(0, 4))),
)


@PROPERTY
@given(data=GENERATED, piece=st.sampled_from([1, 7, 256, 1 << 20]))
def test_archives_written_by_zipfile_read_the_same(data: bytes, piece: int) -> None:
    assert ours(data, piece) == oracle(data)


def test_the_zip64_records_are_really_written() -> None:
    """The generator's small limits do give ZIP64 end records and the 0x0001 extra field in the directory."""
    data = write({f"m{i}": (b"x" * 50 * i, zipfile.ZIP_STORED, False) for i in range(6)}, zip64=(40, 3))
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data
    last = central(data, 5)  # sizes and offset left to the extra field
    assert struct.unpack_from("<2L", data, last + 20) == (0xFFFFFFFF, 0xFFFFFFFF)
    assert struct.unpack_from("<L", data, last + 42)[0] == 0xFFFFFFFF
    assert ours(data) == oracle(data)


def mutate(data: bytes, edits: list[tuple[str, int, bytes]]) -> bytes:
    out = bytearray(data)
    for kind, at, value in edits:
        # Half the edits land in the last 512 bytes: the directory and end records, where damage matters most.
        at = at % (len(out) + 1) if at >= 0 else max(len(out) + at, 0)
        if kind == "flip" and out:
            out[min(at, len(out) - 1)] ^= value[0] or 1
        elif kind == "cut":
            del out[at:]
        elif kind == "insert":
            out[at:at] = value
    return bytes(out)


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "flip", "flip", "cut", "insert"]),
        st.one_of(st.integers(0, 1 << 24), st.integers(-512, -1)),
        st.binary(min_size=1, max_size=8),
    ),
    min_size=1,
    max_size=4,
)


def original_or_refused(original: bytes, damaged: bytes) -> None:
    names, expected, _ = oracle(original)
    try:
        got_names, got, _ = ours(damaged)
    except ZipError:
        got_names = None
    else:
        assert got_names == names and got == expected  # never other content
    try:
        assert through_the_analysis(damaged) == expected
    except AnalysisError as err:
        assert str(err) and "\n" not in str(err)
    else:
        assert got_names is not None  # the analysis refuses at least what the reader refuses


@PROPERTY
@given(original=st.sampled_from([p.read_bytes() for p in SMALL]), edits=EDITS)
def test_damaged_real_archives_give_the_original_or_an_analysis_error(original: bytes, edits: list) -> None:
    original_or_refused(original, mutate(original, edits))


@PROPERTY
@given(original=GENERATED, edits=EDITS)
def test_damaged_generated_archives_give_the_original_or_an_analysis_error(original: bytes, edits: list) -> None:
    original_or_refused(original, mutate(original, edits))


@pytest.mark.parametrize("path", ARCHIVES, ids=lambda p: p.name)
def test_real_print_files_read_byte_for_byte(path: Path) -> None:
    data = path.read_bytes()
    assert ours(data, 1 << 18) == oracle(data)
    assert is_zipfile(str(path))


def test_plain_gcode_and_junk_are_no_zip(tmp_path: Path) -> None:
    for path in FIXTURES.glob("*.gcode"):
        assert not is_zipfile(str(path)) and not zipfile.is_zipfile(path)
    junk = tmp_path / "junk"
    junk.write_bytes(b"PK\x03\x04 not really")
    assert not is_zipfile(str(junk))
    assert not is_zipfile(str(tmp_path / "gone"))


# Hand-made hostile archives.


def two_members(method: int = zipfile.ZIP_DEFLATED) -> bytes:
    return write({"Metadata/plate_1.gcode": (GCODE * 40, method, False),
                  "Metadata/plate_2.gcode": (GCODE, method, False)})


def central(data: bytes, index: int) -> int:
    at = -1
    for _ in range(index + 1):
        at = data.index(b"PK\x01\x02", at + 1)
    return at


def patch(data: bytes, at: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, value)
    return bytes(out)


def refused(data: bytes, kind: type[AnalysisError], match: str) -> None:
    with pytest.raises(kind, match=match):
        through_the_analysis(data)
    with pytest.raises(ZipError):
        ours(data)


def test_duplicate_names_are_refused() -> None:
    data = two_members().replace(b"plate_2.gcode", b"plate_1.gcode")
    refused(data, UnsafeArchive, "duplicate member name")


def test_two_entries_sharing_one_local_header_are_refused() -> None:
    data = two_members()
    refused(patch(data, central(data, 1) + 42, "<L", 0), UnsafeArchive, "overlaps")


def test_an_entry_pointing_into_another_members_data_is_refused() -> None:
    data = two_members()
    refused(patch(data, central(data, 1) + 42, "<L", 40), UnsafeArchive, "overlaps")


def test_a_local_extra_field_running_into_the_next_member_is_refused() -> None:
    """Found only when the member is read (the directory is fine): still a crafted archive, with the reason."""
    data = two_members()
    at = data.index(b"PK\x03\x04") + 28  # the first local header's extra field length
    refused(patch(data, at, "<H", 2000), UnsafeArchive, r"^crafted archive: 'Metadata/plate_1\.gcode' overlaps")


def test_a_local_header_naming_another_member_is_refused() -> None:
    data = bytearray(two_members())
    at = data.index(b"Metadata/plate_1.gcode")  # the first local header's name, not the directory's
    data[at + 15] = ord("3")
    refused(bytes(data), TruncatedArchive, "local header differ")


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_directory_size_smaller_than_the_data_is_refused(method: int) -> None:
    data = two_members(method)
    if method == zipfile.ZIP_STORED:
        refused(patch(data, central(data, 0) + 24, "<L", 100), TruncatedArchive, "sizes differ")
    else:
        refused(patch(data, central(data, 0) + 24, "<L", 100), TruncatedArchive, "CRC")


def test_a_directory_size_larger_than_the_data_is_refused() -> None:
    data = two_members()
    refused(patch(data, central(data, 0) + 24, "<L", len(GCODE) * 40 + 5), TruncatedArchive, "inflates to 1440 bytes")


def test_a_compressed_size_larger_than_the_data_is_refused() -> None:
    data = two_members()
    size = struct.unpack_from("<L", data, central(data, 0) + 20)[0]
    for more in (1, 10_000):  # into the next member's local header, or past the directory
        refused(patch(data, central(data, 0) + 20, "<L", size + more), UnsafeArchive, "overlaps")
    refused(patch(data, central(data, 1) + 20, "<L", size + 1), UnsafeArchive, "overlaps")


def test_a_compressed_size_smaller_than_the_data_is_refused() -> None:
    data = two_members()
    size = struct.unpack_from("<L", data, central(data, 0) + 20)[0]
    refused(patch(data, central(data, 0) + 20, "<L", size - 5), TruncatedArchive, "ends early")


def test_a_bomb_claiming_a_small_size_inflates_no_further_than_that() -> None:
    body = b"\0" * (8 << 20)
    data = write({"Metadata/plate_1.gcode": (body, zipfile.ZIP_DEFLATED, False)})
    lying = patch(data, central(data, 0) + 24, "<L", 1000)
    reader = ZipReader(io.BytesIO(lying))
    seen = 0
    with pytest.raises(ZipError, match="CRC"):
        for piece in reader.chunks(reader.members[0], 1 << 20):
            seen += len(piece)
    assert seen <= 1000
    with pytest.raises(UnsafeArchive, match="ratio"):
        analyze_file(io.BytesIO(data))


@pytest.mark.parametrize("where", ["central", "local"])
def test_the_encrypted_flag_in_either_header_is_refused(where: str) -> None:
    data = two_members()
    at = central(data, 0) + 8 if where == "central" else data.index(b"PK\x03\x04") + 6
    with pytest.raises(UnsafeArchive, match="encrypted"):
        analyze_file(io.BytesIO(patch(data, at, "<H", 1)))


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_bzip2_and_lzma_are_refused(method: int) -> None:
    data = write({"Metadata/plate_1.gcode": (GCODE, method, False)})
    with pytest.raises(UnsafeArchive, match="compression method"):
        analyze_file(io.BytesIO(data))
    reader = ZipReader(io.BytesIO(data))
    with pytest.raises(ZipError, match="not supported"):
        next(reader.chunks(reader.members[0], 100))


def end_record(data: bytes) -> int:
    return data.rindex(b"PK\x05\x06")


@pytest.mark.parametrize("offset", [0xFFFFFFF0, 1 << 20])
def test_a_directory_offset_outside_the_file_is_refused(offset: int) -> None:
    data = two_members()
    refused(patch(data, end_record(data) + 16, "<L", offset), TruncatedArchive, "bad offset")


def test_a_directory_size_beyond_the_file_is_refused() -> None:
    data = two_members()
    refused(patch(data, end_record(data) + 12, "<L", len(data) + 100), TruncatedArchive, "corrupt")


def test_a_huge_member_count_is_refused_before_reading_the_directory() -> None:
    data = two_members()
    at = end_record(data)
    huge = patch(patch(data, at + 8, "<H", 0xFFFF), at + 10, "<H", 0xFFFF)
    with pytest.raises(UnsafeArchive, match=f"archive has 65535 members \\(cap {DEFAULT_LIMITS.max_members}\\)"):
        analyze_file(io.BytesIO(huge))
    data64 = write({"a": (b"x", zipfile.ZIP_STORED, False)}, zip64=(0, 0))
    at = data64.rindex(b"PK\x06\x06")
    huge64 = patch(patch(data64, at + 24, "<Q", 1 << 60), at + 32, "<Q", 1 << 60)
    with pytest.raises(UnsafeArchive, match=f"archive has {1 << 60} members"):
        through_the_analysis(huge64)


def test_a_member_count_not_matching_the_directory_is_refused() -> None:
    data = two_members()
    at = end_record(data)
    refused(patch(patch(data, at + 8, "<H", 1), at + 10, "<H", 1), TruncatedArchive, "lists 2 members")


def test_no_zip_at_all() -> None:
    with pytest.raises(NotAZip):
        through_the_analysis(b"G1 X1\n" * 100)
    with pytest.raises(ZipError):
        ours(b"")


def test_asking_for_a_member_the_archive_lacks_names_it() -> None:
    """As zipfile's getinfo: a KeyError that says which name is missing."""
    reader = ZipReader(io.BytesIO(two_members()))
    with pytest.raises(KeyError, match=r"no item named 'Metadata/x\.png'"):
        reader.getinfo("Metadata/x.png")
