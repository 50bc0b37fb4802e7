"""Error types for hostile or broken print files: each names what is wrong, never a traceback."""

from __future__ import annotations


class AnalysisError(Exception):
    """Base class: the file cannot be analysed. ``str(err)`` is a one-line message for people."""


class NotAZip(AnalysisError):
    """A .gcode.3mf that is not a zip archive at all."""


class PlateNotFound(AnalysisError):
    """The requested plate has no ``Metadata/plate_N.gcode`` in the archive."""


class UnsafeArchive(AnalysisError):
    """Path traversal in a member name, a size over the cap, or a compression ratio that marks a zip bomb."""


class TruncatedArchive(AnalysisError):
    """The archive or the gcode stream ends early or is corrupt (bad CRC, broken deflate data)."""


class ChecksumMismatch(AnalysisError):
    """The plate gcode's MD5 differs from ``Metadata/plate_N.gcode.md5``."""


class BadMetadata(AnalysisError):
    """A metadata file (slice_info.config, project_settings.config, ...) cannot be parsed."""


class BadGcode(AnalysisError):
    """The gcode itself is not something a printer could print: see the subclasses.

    An error about one line starts by saying where it is: ``line N``, or, from a scan that did not count
    lines (``layerwise analyze`` counts them only when a message needs one), the byte ``offset`` where
    the line starts, until the caller counts them and asks for ``numbered(N)``."""

    line: int | None = None
    offset: int | None = None
    detail = ""

    @classmethod
    def at(cls, detail: str, offset: int, line: int | None) -> BadGcode:
        """``detail`` follows the place: ``" is longer than ..."`` or ``" (layer 3): ..."``."""
        where = f"line {line}" if line is not None else f"the line at byte {offset}"
        err = cls(where + detail)
        err.detail, err.offset, err.line = detail, offset, line
        return err

    def numbered(self, line: int) -> BadGcode:
        """The same error naming its line by number (1-based)."""
        return type(self).at(self.detail, self.offset, line) if self.offset is not None else self


class AbsurdExtrusion(BadGcode):
    """A non-finite E value, or more filament in one layer than any printer could use (``gcode.MAX_LAYER_MM``)."""


class LineTooLong(BadGcode):
    """A line longer than ``gcode.MAX_LINE_BYTES``: no real gcode line comes near it."""


class NoLayers(BadGcode):
    """No ``M73 L`` layer marker at all: an empty file, or not gcode sliced for a Bambu Lab printer."""


class GcodeTooComplex(BadGcode):
    """More filament changes or per-layer figures than any real print has (memory stays bounded)."""


class AnalysisFailed(AnalysisError):
    """Last resort at the API boundary: an unexpected error while reading or analysing the file.

    Every known kind of bad input has its own class above; this one only keeps a surprise from escaping
    as a bare exception (the cause stays chained for the log). The archive fuzz test fails on it."""
