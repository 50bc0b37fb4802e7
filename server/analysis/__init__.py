"""Print analysis: per-layer, per-filament usage of a sliced .gcode.3mf (or .gcode). Pure: no network,
no database, no asyncio. See docs/analysis.md for the rules and the accuracy on real files.

Public API (the tracking engine relies on these names):
    analyze_file(source, plate=None, *, limits=None, one_shot=False) -> PrintAnalysis
    analyze_gcode_stream(chunks) -> GcodeUsage
    read_metadata(source, plate) -> ArchiveMetadata
    plate_thumbnail(source, plate) -> bytes | None
    AnalysisError and its subclasses: every failure of these four is one (never ValueError, KeyError,
    RecursionError, ...), with a one-line message for people
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator

from server.analysis.archive import (
    DEFAULT_LIMITS,
    ONE_SHOT_LIMITS,
    GcodeReader,
    Limits,
    file_chunks,
    head,
    is_zip,
    open_archive,
    plate_gcode,
    plate_number,
    read_member,
    resolve_plate,
)
from server.analysis.errors import (
    AbsurdExtrusion,
    AnalysisError,
    AnalysisFailed,
    BadGcode,
    BadMetadata,
    ChecksumMismatch,
    GcodeTooComplex,
    LineTooLong,
    NoLayers,
    NotAZip,
    PlateNotFound,
    TruncatedArchive,
    UnsafeArchive,
)
from server.analysis.gcode import GcodeUsage, ToolChange
from server.analysis.metadata import (
    ArchiveMetadata,
    parse_header,
    parse_model_settings,
    parse_plate_json,
    parse_project_settings,
    parse_slice_info,
)
from server.analysis.result import FilamentUsage, PrintAnalysis, grams
from server.analysis.scanner import VECTOR_FROM_BYTES, GcodeScanner, analyze_gcode_stream
from server.analysis.streams import FirstBytes, line_number, threaded

__all__ = [
    "AbsurdExtrusion",
    "AnalysisError",
    "AnalysisFailed",
    "ArchiveMetadata",
    "BadGcode",
    "BadMetadata",
    "ChecksumMismatch",
    "FilamentUsage",
    "GcodeTooComplex",
    "GcodeUsage",
    "Limits",
    "LineTooLong",
    "NoLayers",
    "NotAZip",
    "PlateNotFound",
    "PrintAnalysis",
    "ToolChange",
    "TruncatedArchive",
    "UnsafeArchive",
    "analyze_file",
    "analyze_gcode_stream",
    "plate_thumbnail",
    "read_metadata",
]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without typing's import (records.py says why)
if TYPE_CHECKING:
    from typing import BinaryIO, ParamSpec, TypeVar

    Source = str | os.PathLike[str] | BinaryIO
    _P = ParamSpec("_P")
    _R = TypeVar("_R")
HEAD_BYTES = 1 << 20  # the gcode header and config block sit in the first few hundred KB


def _file_errors_only(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """The public readers raise AnalysisError and nothing else: the tracker shows the message and the CLI
    prints it. Known bad input has its own class; a surprise becomes AnalysisFailed, cause chained."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(*args, **kwargs)
        except AnalysisError:
            raise
        except Exception as err:
            text = " ".join(str(err).split())[:160]
            raise AnalysisFailed(f"cannot analyse the file ({type(err).__name__}: {text})") from err

    return wrapper


def _source_name(source: Source) -> str:
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    return str(getattr(source, "name", ""))


def _is_archive(source: Source) -> bool:
    try:
        if is_zip(source):
            return True
    except OSError as err:
        raise AnalysisError(f"cannot read the file: {err.strerror or err}") from None
    if _source_name(source).lower().endswith(".3mf"):
        raise NotAZip("not a zip archive (a .gcode.3mf is a zip)")
    return False


def _archive_metadata(archive, plate: int, limits: Limits) -> ArchiveMetadata:  # type: ignore[no-untyped-def]
    version, meta = None, ArchiveMetadata(plate=plate)
    data = read_member(archive, "Metadata/slice_info.config", limits, limits.max_config_bytes)
    if data is not None:
        version, meta = parse_slice_info(data, plate)
    plate_json: dict[str, object] = {}
    data = read_member(archive, f"Metadata/plate_{plate}.json", limits, limits.max_config_bytes)
    if data is not None:
        plate_json = parse_plate_json(data)
    settings: dict[str, str] = {}
    data = read_member(archive, "Metadata/model_settings.config", limits, limits.max_config_bytes)
    if data is not None:
        settings = parse_model_settings(data, plate)
    specs = {}
    data = read_member(archive, "Metadata/project_settings.config", limits, limits.max_config_bytes)
    if data is not None:
        specs = parse_project_settings(data)
    thumbnail = settings.get("thumbnail_file") or f"Metadata/plate_{plate}.png"
    return ArchiveMetadata(
        plate=plate,
        slicer=f"BambuStudio {version}" if version else None,
        plate_name=settings.get("plater_name") or None,
        prediction_s=meta.prediction_s,
        weight_g=meta.weight_g,
        slice_filaments=meta.slice_filaments,
        objects=meta.objects,
        plate_json=plate_json,
        specs=specs,
        thumbnail=thumbnail if thumbnail in archive else None,
    )


def _with_header(meta: ArchiveMetadata, keys: dict[str, str], first: bytes) -> ArchiveMetadata:
    header = parse_header(keys, first)
    return meta._replace(header=header, slicer=header.slicer or meta.slicer, specs=meta.specs or header.specs)


def _header_keys(chunks: Iterator[bytes]) -> tuple[dict[str, str], bytes]:
    first = head(chunks, HEAD_BYTES)
    scanner = GcodeScanner()
    scanner.feed(first)
    return scanner.finish().header, first


@_file_errors_only
def read_metadata(source: Source, plate: int | str | None = None, *, limits: Limits | None = None) -> ArchiveMetadata:
    """Everything the file says about itself (slice_info, plate json, model and project settings, gcode
    header), without parsing the gcode body."""
    limits = limits or DEFAULT_LIMITS
    if not _is_archive(source):
        keys, first = _header_keys(file_chunks(source, limits))
        return _with_header(ArchiveMetadata(plate=1), keys, first)
    with open_archive(source, limits) as archive:
        number = resolve_plate(archive, plate)
        meta = _archive_metadata(archive, number, limits)
        # Only the head is read here: no checksum to check, so its member is not read (nor capped) either.
        reader = plate_gcode(archive, number, limits, hashed=False)
        keys, first = _header_keys(iter(reader))
        return _with_header(meta, keys, first)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@_file_errors_only
def plate_thumbnail(source: Source, plate: int | str | None = None, *, limits: Limits | None = None) -> bytes | None:
    """The plate's PNG thumbnail (``Metadata/plate_N.png``) for the web app, or None."""
    limits = limits or DEFAULT_LIMITS
    if not _is_archive(source):
        return None
    with open_archive(source, limits) as archive:
        number = resolve_plate(archive, plate)
        png = read_member(archive, _archive_metadata(archive, number, limits).thumbnail or "", limits,
                          cap=limits.max_thumbnail_bytes)
    # Served as image/png: anything else the member may hold is no thumbnail.
    return png if png is not None and png.startswith(PNG_SIGNATURE) else None


def _filaments(usage: GcodeUsage, meta: ArchiveMetadata) -> dict[int, FilamentUsage]:
    totals = usage.totals()
    slice_info = {f.index: f for f in meta.slice_filaments}
    header = meta.header
    indices = sorted(
        {i for i, mm in totals.items() if mm}
        | set(meta.used_filaments())
        | set(header.lengths_mm if header.used_filaments else ())
    )
    out: dict[int, FilamentUsage] = {}
    for i in indices:
        spec = meta.specs.get(i) or header.specs.get(i)
        listed = slice_info.get(i)
        density = spec.density if spec else None
        diameter = spec.diameter if spec else None
        mm = totals.get(i, 0.0)
        slicer_mm = header.lengths_mm.get(i)
        if slicer_mm is None and listed and listed.used_m is not None:
            slicer_mm = listed.used_m * 1000
        slicer_g = header.weights_g.get(i)
        if slicer_g is None and listed:
            slicer_g = listed.used_g
        out[i] = FilamentUsage(
            index=i,
            mm=mm,
            g=grams(mm, diameter, density),
            density=density,
            diameter=diameter,
            type=(listed.type if listed and listed.type else None) or (spec.type if spec else None),
            color=(listed.color if listed and listed.color else None) or (spec.color if spec else None),
            vendor=spec.vendor if spec else None,
            settings_id=spec.settings_id if spec else None,
            slicer_mm=slicer_mm,
            slicer_g=slicer_g,
        )
    return out


def _analyze(
    reader: GcodeReader,
    meta: ArchiveMetadata,
    *,
    verify: bool = False,
    vectorised: bool | None = None,
    again: Callable[[], Iterator[bytes]] | None = None,
) -> PrintAnalysis:
    """``again``: the same gcode from its start, to number the line of an error afterwards, where lines
    are not counted while scanning (a one-shot process)."""
    used = meta.used_filaments()
    tap = FirstBytes(iter(reader))
    stream = iter(tap)
    chunks = threaded(stream)
    try:
        usage = analyze_gcode_stream(chunks, default_filament=used[0] if used else 0, vectorised=vectorised,
                                     count_lines=again is None)
    except BadGcode as err:
        chunks.close()  # stops the reader thread before this one takes over the stream
        if verify:  # garbage may be damage: read on, so a bad CRC or MD5 is reported as what it is
            for _chunk in stream:
                pass
        if again is not None:
            raise line_number(err, again) from None
        raise
    if not usage.layer_count:
        raise NoLayers(
            f"the plate's gcode has no layers ({usage.size} bytes, no M73 L layer marker): "
            "empty, or not a gcode sliced for a Bambu Lab printer"
        )
    meta = _with_header(meta, usage.header, tap.first)
    return PrintAnalysis(
        layer_count=usage.layer_count,
        plate=meta.plate,
        gcode_md5=reader.md5,
        filaments=_filaments(usage, meta),
        tool_changes=usage.tool_changes,
        layers=usage.layers,
        marks=usage.marks,
        gcode_bytes=usage.size,
        slicer=meta.slicer,
        prediction_s=meta.prediction_s,
        weight_g=meta.weight_g,
    )


def _indexer(size: int | None, one_shot: bool) -> bool | None:
    """None (numpy when installed), or False (the regex indexer) for a one-shot process and a file too small
    for numpy's import to pay. The two indexers' sums can differ in the last bits (summation order)."""
    return False if one_shot and size is not None and size < VECTOR_FROM_BYTES else None


@_file_errors_only
def analyze_file(
    source: Source,
    plate: int | str | None = None,
    *,
    limits: Limits | None = None,
    one_shot: bool = False,
    hashed: bool = True,
) -> PrintAnalysis:
    """Analyse one plate of a .gcode.3mf (path or binary file object), or a plain .gcode file.

    ``plate``: N, ``"Metadata/plate_N.gcode"``, the print command's param, or None for the only/first
    plate (plain gcode ignores it). Raises an AnalysisError subclass for hostile or broken input.
    ``one_shot``: a process that analyses one file and exits (``layerwise analyze``) leaves numpy unloaded
    when the gcode is smaller than VECTOR_FROM_BYTES.
    ``hashed=False``: no MD5 of the gcode (``gcode_md5`` is empty, the archive's ``.md5`` is not checked;
    the zip's CRC-32 still is), for a caller that shows neither (``layerwise analyze`` without ``--json``).
    """
    limits = limits or (ONE_SHOT_LIMITS if one_shot else DEFAULT_LIMITS)
    if not _is_archive(source):
        plate_number(plate)  # still reject nonsense
        size = os.path.getsize(source) if isinstance(source, str | os.PathLike) else None
        reader = GcodeReader(file_chunks(source, limits), hashed=hashed)
        # A file named by path can be read again from its start, to number an error's line.
        again = (lambda: file_chunks(source, limits)) if one_shot and size is not None else None
        return _analyze(reader, ArchiveMetadata(plate=1), vectorised=_indexer(size, one_shot), again=again)
    with open_archive(source, limits) as archive:
        number = resolve_plate(archive, plate)
        meta = _archive_metadata(archive, number, limits)
        reader = plate_gcode(archive, number, limits, hashed=hashed)
        again = (lambda: iter(plate_gcode(archive, number, limits, hashed=False))) if one_shot else None
        return _analyze(reader, meta, verify=True, vectorised=_indexer(reader.expected_size, one_shot), again=again)
