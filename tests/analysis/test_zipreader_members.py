"""server.analysis.zipreader on hand-built one-member archives: names (cp437 or UTF-8), the messages
that name a member, where its data starts, and how stored and deflated data are handed over or refused.

Each archive is built byte by byte here, so a test can make the directory and the local header disagree
in exactly one field; zipfile is the oracle where it reads the archive at all.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

from server.analysis.zipreader import Overlapping, ZipError, ZipReader
from tests.zip_bytes import CONTENT, DEFLATED, PATCHED, UTF8, build, deflated, whole


def pieces(data: bytes, size: int = 1 << 20) -> list[bytes]:
    reader = ZipReader(io.BytesIO(data))
    return list(reader.chunks(reader.members[0], size))


def refusal(data: bytes, size: int = 1 << 20) -> tuple[ZipError, list[bytes]]:
    """The error reading the member, and the pieces handed over before it."""
    reader, seen = ZipReader(io.BytesIO(data)), []
    with pytest.raises(ZipError) as caught:
        for piece in reader.chunks(reader.members[0], size):
            seen.append(piece)
    return caught.value, seen


def test_a_name_without_the_utf8_flag_is_cp437_as_zipfile_reads_it() -> None:
    data = build(name=b"caf\x82 \x81ber.gcode")  # 0x82 is é and 0x81 ü in cp437, neither valid UTF-8
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["café über.gcode"]
    reader = ZipReader(io.BytesIO(data))
    assert reader.namelist() == ["café über.gcode"]
    assert whole(reader, "café über.gcode") == CONTENT


def test_ascii_names_are_read_without_loading_the_cp437_codec() -> None:
    """The reason the reader exists is import time (module docstring): ASCII names need no codec module."""
    code = ("import io, sys; from server.analysis.zipreader import ZipReader; "
            f"ZipReader(io.BytesIO({build(name=b'Metadata/plate_1.gcode')!r})); "
            "print('encodings.cp437' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(("name", "shown"), [
    ("x" * 80, "'" + "x" * 80 + "'"),  # up to 80 characters: whole
    ("y" * 81, "'" + "y" * 80 + "...'"),  # longer: the first 80 and an ellipsis
])
def test_a_member_is_named_in_messages_whole_or_cut_at_80_characters(name: str, shown: str) -> None:
    err, _ = refusal(build(name=name.encode(), local_method=DEFLATED))
    assert str(err) == f"{shown}: the compression method of the directory and the local header differ"


@pytest.mark.parametrize("where", ["central", "local"])
def test_the_patched_data_flag_in_either_header_is_refused(where: str) -> None:
    data = build(flags=PATCHED, local_flags=0) if where == "central" else build(local_flags=PATCHED)
    err, _ = refusal(data)
    assert str(err) == "compressed patched data is not supported"


def test_a_local_header_without_its_signature_is_refused_naming_the_member() -> None:
    data = b"PK\x03\x05" + build()[4:]
    err, _ = refusal(data)
    assert str(err) == "bad magic number for the local header of 'a'"


def test_a_local_name_longer_than_the_file_is_refused_naming_the_member() -> None:
    data = bytearray(build())
    struct.pack_into("<H", data, 26, 60000)  # the local header's name length
    err, _ = refusal(bytes(data))
    assert str(err) == "the local header of 'a' is cut short (file truncated)"


def test_an_undecodable_local_name_never_matches_an_empty_directory_name() -> None:
    err, _ = refusal(build(name=b"", local_name=b"\xff", local_flags=UTF8))
    assert str(err) == "member name in the directory '' and its local header differ"


def test_a_local_extra_field_pushing_the_data_past_the_directory_is_an_overlap() -> None:
    """Four bytes of extra field: the data would start inside the member and end inside the directory."""
    data = bytearray(build())
    struct.pack_into("<H", data, 28, 4)  # the local header's extra field length
    err, _ = refusal(bytes(data))
    assert type(err) is Overlapping
    assert str(err) == "'a' overlaps the next member or the directory"


@pytest.mark.parametrize(("left", "message"), [
    (30 + 1, "'a' is cut short (file truncated)"),  # the local header and name are left, the data is gone
    (10, "the local header of 'a' is cut short (file truncated)"),
])
def test_a_file_cut_after_opening_is_refused_naming_the_member(tmp_path: Path, left: int, message: str) -> None:
    path = tmp_path / "cut.gcode.3mf"
    path.write_bytes(build())
    with path.open("rb") as fh:
        reader = ZipReader(fh)
        os.truncate(path, left)
        with pytest.raises(ZipError) as caught:
            whole(reader, "a")
    assert str(caught.value) == message


def test_a_stored_member_with_a_bad_crc_withholds_its_last_piece() -> None:
    """The damage is known once the last byte is read: that piece is never handed over."""
    err, seen = refusal(build(crc=zlib.crc32(CONTENT) ^ 1), size=1000)
    assert str(err) == "bad CRC-32 for 'a'"
    assert b"".join(seen) == CONTENT[:2000]  # 2800 bytes: pieces of 1000, 1000, then the refused 800


def test_an_empty_stored_member_with_a_crc_is_refused() -> None:
    err, seen = refusal(build(b"", crc=1))
    assert (str(err), seen) == ("bad CRC-32 for 'a'", [])


@pytest.mark.parametrize("size", [1, 7, 100])
def test_deflated_members_come_in_pieces_of_at_most_the_size_asked(size: int) -> None:
    got = pieces(build(method=DEFLATED), size)
    assert max(map(len, got)) == size
    assert b"".join(got) == CONTENT


def test_bad_deflate_data_is_refused_naming_the_member() -> None:
    err, _ = refusal(build(method=DEFLATED, stored=b"\xff" * 40))
    assert str(err).startswith("'a': bad deflate data (Error -3 while decompressing data")


def test_a_deflated_member_with_a_bad_crc_is_refused() -> None:
    err, _ = refusal(build(method=DEFLATED, crc=zlib.crc32(CONTENT) ^ 1))
    assert str(err) == "bad CRC-32 for 'a'"


def test_a_directory_size_too_small_with_the_crc_of_that_much_says_so() -> None:
    """The first 500 bytes match the CRC, so the size is the lie: told over pieces, not only the first."""
    err, seen = refusal(build(method=DEFLATED, crc=zlib.crc32(CONTENT[:500]), file_size=500), size=64)
    assert str(err) == "'a' inflates past its size in the directory (500)"
    assert b"".join(seen) == CONTENT[:448]


def test_bytes_after_the_deflate_stream_are_refused() -> None:
    err, _ = refusal(build(method=DEFLATED, stored=deflated(CONTENT) + b"junk"))
    assert str(err) == "'a': data after the end of its deflate stream"


def stored_block(content: bytes, final: bool) -> bytes:
    """A deflate stored block (RFC 1951 3.2.4), byte aligned."""
    return bytes([final]) + struct.pack("<2H", len(content), len(content) ^ 0xFFFF) + content


def test_bytes_after_a_stream_ending_at_a_read_boundary_are_refused() -> None:
    """The stream ends exactly at the first 64 KiB read: nothing is left over in it, yet bytes follow."""
    content = bytes(range(256)) * 255 + bytes(251)  # 65531 bytes: with the 5 byte block header, 64 KiB
    stream = stored_block(content, final=True)
    assert len(stream) == 1 << 16
    err, _ = refusal(build(content, method=DEFLATED, stored=stream + b"junk"))
    assert str(err) == "'a': data after the end of its deflate stream"


def test_a_first_read_that_inflates_to_nothing_is_not_the_end() -> None:
    """Empty stored blocks (what a sync flush writes) fill the first 64 KiB read: valid, as zipfile says."""
    stream = stored_block(b"", final=False) * 13108 + stored_block(CONTENT, final=True)
    data = build(method=DEFLATED, stored=stream)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("a") == CONTENT
    assert b"".join(pieces(data)) == CONTENT
