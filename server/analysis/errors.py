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
