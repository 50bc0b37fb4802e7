"""Every error the slots package raises; each message is fit to show a person."""

from __future__ import annotations

from dataclasses import dataclass


class SlotError(Exception):
    """A slot action that cannot be done; the message is fit to show a user."""


class UnknownPrinter(SlotError):
    pass


class InvalidTray(SlotError):
    pass


class SpoolNotFound(SlotError):
    pass


@dataclass(frozen=True)
class SpoolElsewhere(SlotError):
    """The spool is already assigned to another slot; repeat with ``move=True`` to move it."""

    spool_id: int
    printer: str
    tray: int

    def __str__(self) -> str:
        return f"spool {self.spool_id} is already in {self.printer} tray {self.tray}"


class RfidError(SlotError):
    """An RFID action that cannot be done; the message is fit to show a user."""
