"""Slot assignments: which Spoolman spool sits in which tray of which printer.

The one way in for the JSON API, the pages and RFID matching, so every path
validates the same way and announces the change on the event bus.
"""

from __future__ import annotations

import asyncio
import logging

from server.billing import ledger
from server.billing.outbox import Outbox
from server.db import Database, repo
from server.events import Event, EventBus
from server.slots.errors import InvalidTray, SpoolElsewhere, SpoolNotFound, UnknownPrinter
from server.spoolman import SpoolmanError
from server.spoolman.directory import SpoolDirectory

log = logging.getLogger(__name__)

EXTERNAL_TRAYS = (254, 255)
SOURCES = ("manual", "rfid", "env")


def validate_tray(tray: int) -> int:
    if not 0 <= tray <= 255:
        raise InvalidTray(f"tray {tray} does not exist: global tray indexes run from 0 to 255")
    return tray


class SlotService:
    def __init__(self, db: Database, spools: SpoolDirectory, bus: EventBus, printers: list[str],
                 outbox: Outbox | None = None) -> None:
        self.db = db
        self.spools = spools
        self.bus = bus
        self.printers = list(printers)
        self.outbox = outbox

    def _check_printer(self, printer: str) -> None:
        if printer not in self.printers:
            raise UnknownPrinter(f"no printer named {printer!r}")

    async def assignments(self, printer: str | None = None) -> list[repo.SlotAssignmentData]:
        if printer is not None:
            self._check_printer(printer)
        return await asyncio.to_thread(repo.list_assignments, self.db, printer)

    async def assign(
        self, printer: str, tray: int, spool_id: int, *, source: str = "manual", move: bool = False
    ) -> repo.SlotAssignmentData:
        self._check_printer(printer)
        validate_tray(tray)
        if source not in SOURCES:
            raise ValueError(f"unknown assignment source {source!r}")
        try:
            spool = await self.spools.get(spool_id)
        except SpoolmanError as exc:
            # Spoolman down must not stop someone at the printer: keep the id, verify later.
            log.warning("could not verify spool %s with Spoolman: %s", spool_id, exc)
            spool = True
        if spool is None:
            raise SpoolNotFound(f"Spoolman has no spool {spool_id}")
        elsewhere = [
            (p, t)
            for p, t in await asyncio.to_thread(repo.find_trays_with_spool, self.db, spool_id)
            if (p, t) != (printer, tray)
        ]
        if elsewhere and not move:
            raise SpoolElsewhere(spool_id, *elsewhere[0])
        for other_printer, other_tray in elsewhere:
            await asyncio.to_thread(repo.unassign, self.db, other_printer, other_tray)
            self._announce(other_printer, other_tray, None, None)
        # Bills that waited for a spool in this tray go to this one now, in the same transaction: a
        # bill written between the two steps would otherwise wait for a spool the tray has.
        assignment, released = await asyncio.to_thread(
            ledger.assign_and_release, self.db, printer, tray, spool_id, source
        )
        if released and self.outbox is not None:
            self.outbox.wake()
        self._announce(printer, tray, spool_id, source)
        return assignment

    async def unassign(self, printer: str, tray: int) -> bool:
        self._check_printer(printer)
        validate_tray(tray)
        removed = await asyncio.to_thread(repo.unassign, self.db, printer, tray)
        if removed:
            self._announce(printer, tray, None, None)
        return removed

    def spool_deleted(self, printer: str, tray: int) -> None:
        """The outbox found the tray's spool deleted in Spoolman and emptied the tray."""
        self._announce(printer, tray, None, None)

    def _announce(self, printer: str, tray: int, spool_id: int | None, source: str | None) -> None:
        log.info("%s tray %s -> spool %s (%s)", printer, tray, spool_id, source or "unassigned")
        self.bus.publish(Event("slot", printer, {"tray": tray, "spool_id": spool_id, "source": source}))
