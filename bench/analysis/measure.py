"""One measurement in a fresh process (so peak RSS belongs to it alone); prints a JSON line.

    python -m bench.analysis.measure MODE FILE [LIMIT_BYTES]

MODE: ``zlib`` (bare inflate of the raw member with zlib.decompressobj), ``zipfile`` (ZipFile.open().read
loop, includes CRC), ``analyze`` (server.analysis.analyze_file, MD5 and metadata included), ``baseline``
(the token-dictionary parser over the first LIMIT_BYTES of the member, inflated before the timing) and
``engine`` (analyze_gcode_stream over the same bytes: parse against parse), ``stages`` (CPU of the
reader thread's work and of the parser's work, each run alone; holds the gcode in memory).
"""

from __future__ import annotations

import itertools
import json
import resource
import struct
import sys
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

MEMBER = "Metadata/plate_1.gcode"
CHUNK = 1 << 20


def _rss_kb() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() // 1024


def bare_inflate(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(MEMBER)
    with path.open("rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        left, out = info.compress_size, 0
        while left:
            raw = fh.read(min(CHUNK, left))
            left -= len(raw)
            out += len(inflater.decompress(raw))
        out += len(inflater.flush())
    return out


def zipfile_read(path: Path) -> int:
    out = 0
    with zipfile.ZipFile(path) as archive, archive.open(MEMBER) as member:
        while chunk := member.read(CHUNK):
            out += len(chunk)
    return out


def _member_chunks(path: Path, limit: int) -> Iterator[bytes]:
    with zipfile.ZipFile(path) as archive, archive.open(MEMBER) as member:
        read = 0
        while read < limit and (chunk := member.read(CHUNK)):
            read += len(chunk)
            yield chunk


def main(argv: list[str]) -> int:
    mode, path = argv[0], Path(argv[1])
    limit = int(argv[2]) if len(argv) > 2 else 1 << 62
    from bench.analysis.baseline import baseline_usage
    from server.analysis import analyze_file, analyze_gcode_stream

    rss_before = _rss_kb()
    start = time.perf_counter()
    cpu = time.process_time()
    result: dict[str, object] = {}
    if mode == "zlib":
        result["bytes"] = bare_inflate(path)
    elif mode == "zipfile":
        result["bytes"] = zipfile_read(path)
    elif mode == "analyze":
        analysis = analyze_file(path)
        result.update(bytes=analysis.gcode_bytes, layers=analysis.layer_count, mm=analysis.totals())
    elif mode in ("baseline", "engine"):
        chunks = list(itertools.islice(_member_chunks(path, limit), 10_000))  # inflate outside the timing
        start = time.perf_counter()
        cpu = time.process_time()
        if mode == "baseline":
            layers, totals = baseline_usage(chunks)
        else:
            usage = analyze_gcode_stream(chunks)
            layers, totals = usage.layer_count, usage.totals()
        result.update(bytes=sum(map(len, chunks)), layers=layers, mm=totals)
    elif mode == "stages":  # the two threads' work, each alone: reader (inflate, CRC, MD5), then parser
        from server.analysis.archive import open_archive, plate_gcode

        with open_archive(path) as archive:
            chunks = list(plate_gcode(archive, 1))
        result["reader_cpu"] = time.process_time() - cpu
        cpu = time.process_time()
        analyze_gcode_stream(chunks)
        result["parser_cpu"] = time.process_time() - cpu
        cpu = time.process_time()
    else:
        raise SystemExit(f"unknown mode {mode}")
    result["seconds"] = time.perf_counter() - start
    result["cpu_seconds"] = time.process_time() - cpu  # all threads of the process
    result["rss_growth_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
