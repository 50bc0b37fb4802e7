"""Typed async client for Spoolman's REST API (0.26)."""

from server.spoolman.client import SpoolmanClient
from server.spoolman.errors import SpoolmanError, SpoolmanNotFound, SpoolmanRejected, SpoolmanUnreachable
from server.spoolman.models import ExtraField, Filament, Page, Spool, Vendor

__all__ = [
    "ExtraField",
    "Filament",
    "Page",
    "Spool",
    "SpoolmanClient",
    "SpoolmanError",
    "SpoolmanNotFound",
    "SpoolmanRejected",
    "SpoolmanUnreachable",
    "Vendor",
]
