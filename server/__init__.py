"""Layerwise: per-layer filament billing from Bambu Lab printers to Spoolman."""

__version__ = "0.1.0"
