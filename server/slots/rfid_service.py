"""RFID auto-matching, applied: looks tags up in Spoolman and assigns spools through the slot service.

The printer task hands the tray view of every report's snapshot (``PrinterSnapshot.view``, typed and made
once per report; nothing here reads the raw report) to ``on_view``. That call is cheap and never waits for
Spoolman: it compares the trays' presence and tags with what was last applied and, only when something
changed (or at a start / reconnect, or when a failed lookup is due for a retry), wakes this printer's
worker, which does the lookups and applies the decisions of ``server.slots.rfid``. So a slow or
absent Spoolman never holds up the printer's reports.

What must survive a restart lives in the ``meta`` table: the last applied tray tags per printer (so a
spool swapped while Layerwise was down is still seen as a swap), the conflicts a user resolved as
"keep manual", and the spools this service created (so a tag never gets a second spool).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field

from server.config import RfidConfig
from server.db import Database, repo
from server.events import Event, EventBus
from server.printer.trays import PrinterView
from server.slots import rfid
from server.slots.errors import RfidError, SlotError
from server.slots.service import SlotService
from server.slots.tag_spools import TagSpools
from server.spoolman import SpoolmanClient, SpoolmanError

log = logging.getLogger(__name__)

RETRY_SECONDS = 30.0  # a lookup that failed (Spoolman down) is retried this long after, on the next view
LOOKUP_TTL = 60.0  # tag -> spool answers are reused this long; a spool tagged meanwhile waits this much
# A tray must look empty this long before its assignment goes: A1 deltas carry a loaded tray as a bare
# {id} now and then (the real cloud sequence does, 2 s before the full data), which reads as "empty".
EMPTY_GRACE = 10.0


@dataclass(frozen=True)
class RfidConflict:
    printer: str
    tray: int
    tag: str
    manual_spool_id: int
    tag_spool_id: int


@dataclass(frozen=True)
class TagOffer:
    """A tray with a tag no spool carries, holding a spool someone assigned by hand: remember it?"""

    printer: str
    tray: int
    tag: str
    spool_id: int


@dataclass
class _Printer:
    loaded: bool = False
    latest: PrinterView | None = None
    applied: dict[int, rfid.TrayTag] = field(default_factory=dict)
    full: bool = True  # the next pass looks at every tray
    pending: set[int] = field(default_factory=set)  # trays whose lookup failed
    retry_at: float | None = None
    again: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    empty_since: dict[int, float] = field(default_factory=dict)  # assigned trays seen empty, since when
    conflicts: dict[int, RfidConflict] = field(default_factory=dict)
    kept: set[tuple[int, str, int]] = field(default_factory=set)
    # The last view found to differ in no tray from ``applied`` (that very dict: a pass replaces it,
    # never changes it in place). Most reports bring the same (frozen) view again: no need to compare.
    unchanged: tuple[PrinterView, dict[int, rfid.TrayTag]] | None = None


class RfidService:
    def __init__(self, config: RfidConfig, spoolman: SpoolmanClient | None, slots: SlotService, bus: EventBus,
                 db: Database, *, retry_seconds: float = RETRY_SECONDS, lookup_ttl: float = LOOKUP_TTL,
                 empty_grace: float = EMPTY_GRACE) -> None:
        self.config = config
        self.spoolman = spoolman
        self.slots = slots
        self.bus = bus
        self.db = db
        self.retry_seconds = retry_seconds
        self.lookup_ttl = lookup_ttl
        self.empty_grace = empty_grace
        self.options = rfid.Options(auto_assign=config.auto_assign, create_spools=config.create_spools)
        self._printers: dict[str, _Printer] = {}
        self.tags = TagSpools(config.extra_field, spoolman, db, lookup_ttl=lookup_ttl)
        self._no_client_logged = False

    # ----- feeding ----------------------------------------------------------------------------------

    async def on_view(self, printer: str, view: PrinterView) -> None:
        """Take the printer's latest view; wake its worker only when a tray's tag or presence changed."""
        state = self._printers.get(printer)
        if state is None or not state.loaded:  # loaded once; a coroutine per report costs a farm
            state = await self._state(printer)
        state.latest = view
        if self.spoolman is None:
            if not self._no_client_logged:
                self._no_client_logged = True
                log.info("RFID matching is off: no Spoolman configured")
            return
        back = bool(state.empty_since) and any(tray.present for tray in view.trays
                                               if tray.global_index in state.empty_since)
        due = (state.full or back or self._changed(state, view)
               or (state.retry_at is not None and time.monotonic() >= state.retry_at))
        if not due:
            return
        if state.task is None or state.task.done():
            state.task = asyncio.create_task(self._work(printer, state), name=f"rfid-{printer}")
        else:
            state.again = True
            state.wake.set()

    @staticmethod
    def _changed(state: _Printer, view: PrinterView) -> bool:
        """A tray's presence or tag differs from what was last applied."""
        if state.unchanged is not None and state.unchanged[0] is view and state.unchanged[1] is state.applied:
            return False
        if rfid.changed_trays(state.applied, view):
            return True
        state.unchanged = (view, state.applied)
        return False

    def reset(self, printer: str) -> None:
        """The printer reconnected: look at every tray again on its next view."""
        if printer in self._printers:
            self._printers[printer].full = True

    async def drain(self) -> None:
        """Wait until every worker is idle (tests, shutdown)."""
        while busy := [s.task for s in self._printers.values() if s.task is not None and not s.task.done()]:
            await asyncio.gather(*busy, return_exceptions=True)

    async def aclose(self) -> None:
        for state in self._printers.values():
            if state.task is not None:
                state.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await state.task

    # ----- conflicts and tag learning -----------------------------------------------------------------

    async def conflicts(self, printer: str) -> list[RfidConflict]:
        """Open conflicts, dropping any the user settled by assigning another spool meanwhile."""
        state = await self._state(printer)
        held = {a.tray: a.spool_id for a in await self.slots.assignments(printer)}
        for tray, conflict in list(state.conflicts.items()):
            if held.get(tray) != conflict.manual_spool_id:
                self._clear_conflict(printer, state, tray)
        return sorted(state.conflicts.values(), key=lambda c: c.tray)

    async def resolve_conflict(self, printer: str, tray: int, use: str) -> None:
        """``use="tag"`` assigns the tag's spool; ``use="manual"`` keeps the manual one for this tag."""
        if use not in ("tag", "manual"):
            raise ValueError(f"use must be 'tag' or 'manual', not {use!r}")
        state = await self._state(printer)
        conflict = state.conflicts.get(tray)
        if conflict is None:
            raise RfidError(f"{printer} tray {tray} has no RFID conflict")
        if use == "tag":
            await self.slots.assign(printer, tray, conflict.tag_spool_id, source="rfid", move=True)
        else:
            state.kept.add((tray, conflict.tag, conflict.manual_spool_id))
            await asyncio.to_thread(repo.set_meta, self.db, _kept_key(printer), json.dumps(sorted(state.kept)))
        self._clear_conflict(printer, state, tray)

    async def tag_offer(self, printer: str, tray: int) -> TagOffer | None:
        """An offer to remember the tray's tag on the spool assigned to it by hand, when no spool carries
        the tag yet; None otherwise (or while Spoolman cannot say)."""
        tag = await self._current_tag(printer, tray)
        if tag is None or self.spoolman is None:
            return None
        held = await asyncio.to_thread(repo.get_assignment, self.db, printer, tray)
        if held is None or held.source not in rfid.PERSON_SOURCES:
            return None
        lookup = await self.tags.lookup({tag})
        if tag not in lookup or lookup[tag] is not None:
            return None
        return TagOffer(printer, tray, tag, held.spool_id)

    async def remember_tag(self, printer: str, tray: int, spool_id: int) -> None:
        """Store the tray's tag on the spool, so the tag matches it from now on. A tag names one spool,
        so any other spool carrying it loses it."""
        tag = await self._current_tag(printer, tray)
        if tag is None:
            raise RfidError(f"{printer} tray {tray} reports no RFID tag")
        client = self.tags.client()
        await self.tags.ensure_field(client)
        for other in (await self.tags.scan(client, {tag})).get(tag, []):
            if other != spool_id:
                log.info("tag %s moves from spool %s to spool %s", tag, other, spool_id)
                await client.patch_spool_extra(other, {self.config.extra_field: None})
        await client.patch_spool_extra(spool_id, {self.config.extra_field: tag})
        self.tags.remember(tag, spool_id)
        self.slots.spools.invalidate(spool_id)

    # ----- the worker ---------------------------------------------------------------------------------

    async def _work(self, printer: str, state: _Printer) -> None:
        while True:
            state.again = False
            state.wake.clear()
            try:
                wake_in = await self._pass(printer, state)
            except Exception:  # a bug must not end matching for this printer; the next change retries
                log.exception("RFID matching for %s failed", printer)
                wake_in = None
            if state.again:
                continue
            if wake_in is None:
                return
            # Trays are waiting out the empty grace: look again then, or at the next change.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.wake.wait(), wake_in)

    async def _pass(self, printer: str, state: _Printer) -> float | None:
        """One matching pass over the latest view; the seconds until a waiting tray is due, if any."""
        view = state.latest
        client = self.spoolman
        if view is None or client is None:
            return None
        trays = ({t.global_index for t in view.trays} if state.full
                 else set(rfid.changed_trays(state.applied, view)) | state.pending)
        state.full = False
        held = {a.tray: rfid.Held(a.spool_id, a.source) for a in await self.slots.assignments(printer)}
        waiting = self._still_in_grace(state, view, trays, held)
        trays -= waiting.keys()
        tags = rfid.tags_to_look_up(view, trays)
        lookup = await self.tags.lookup(tags) if tags and await self.tags.ensure_field(client, quiet=True) else {}
        actions = rfid.decide(state.applied, view, held, lookup, self.options, trays=trays, kept=state.kept)
        failed: set[int] = set()
        for action in actions:
            if not await self._apply(printer, state, view, action):
                failed.add(action.tray)
        now = rfid.tags_of(view)
        # A new dict, never this one changed in place: on_view's ``unchanged`` holds the one it compared.
        state.applied = {**state.applied, **{tray: now[tray] for tray in trays - failed if tray in now}}
        # A failed or waiting tray keeps its old applied value, so a swap is still recognised as one later.
        state.pending = failed | waiting.keys()
        state.retry_at = time.monotonic() + self.retry_seconds if failed else None
        payload = {str(k): [v.present, v.tag] for k, v in sorted(state.applied.items())}
        await asyncio.to_thread(repo.set_meta, self.db, _trays_key(printer), json.dumps(payload))
        return min(waiting.values()) if waiting else None

    def _still_in_grace(self, state: _Printer, view: PrinterView, trays: set[int],
                        held: dict[int, rfid.Held]) -> dict[int, float]:
        """Assigned trays that look empty but not yet for ``empty_grace``: tray -> seconds left."""
        now = time.monotonic()
        empty = {t.global_index for t in view.trays if not t.present and t.global_index in held}
        state.empty_since = {t: since for t, since in state.empty_since.items() if t in empty}
        waiting = {}
        for tray in empty & trays:
            left = state.empty_since.setdefault(tray, now) + self.empty_grace - now
            if left > 0:
                waiting[tray] = left
        return waiting

    async def _apply(self, printer: str, state: _Printer, view: PrinterView, action: rfid.Action) -> bool:
        """Carry out one action; False when it must be retried."""
        if isinstance(action, rfid.NoChange):
            if not action.retry:
                self._clear_conflict(printer, state, action.tray)
            return not action.retry
        if isinstance(action, rfid.Conflict):
            self._record_conflict(printer, state, action)
            return True
        self._clear_conflict(printer, state, action.tray)
        try:
            if isinstance(action, rfid.Unassign):
                await self.slots.unassign(printer, action.tray)
                return True
            if isinstance(action, rfid.Assign):
                await self.slots.assign(printer, action.tray, action.spool_id, source="rfid", move=True)
                return True
            tray = view.tray(action.tray)
            spool_id = await self.tags.create(printer, action, tray) if tray is not None else None
            if spool_id is not None:
                await self.slots.assign(printer, action.tray, spool_id, source="rfid", move=True)
            return True
        except SpoolmanError as error:
            self.tags.note_down(error)
            return False
        except SlotError as error:
            # E.g. the spool was deleted between the lookup and the assignment: look again next time.
            log.warning("RFID: %s tray %s: %s", printer, action.tray, error)
            self.tags.forget()
            return False

    # ----- conflicts ----------------------------------------------------------------------------------

    def _record_conflict(self, printer: str, state: _Printer, action: rfid.Conflict) -> None:
        conflict = RfidConflict(printer, action.tray, action.tag, action.manual_spool_id, action.tag_spool_id)
        if state.conflicts.get(action.tray) == conflict:
            return
        state.conflicts[action.tray] = conflict
        log.info("RFID conflict on %s tray %s: assigned spool %s, tag names spool %s",
                 printer, action.tray, action.manual_spool_id, action.tag_spool_id)
        self.bus.publish(Event("rfid", printer, {"tray": action.tray, "conflict": asdict(conflict)}))

    def _clear_conflict(self, printer: str, state: _Printer, tray: int) -> None:
        if state.conflicts.pop(tray, None) is not None:
            self.bus.publish(Event("rfid", printer, {"tray": tray, "conflict": None}))

    # ----- state --------------------------------------------------------------------------------------

    async def _state(self, printer: str) -> _Printer:
        state = self._printers.setdefault(printer, _Printer())
        if not state.loaded:
            state.loaded = True
            trays = json.loads(await asyncio.to_thread(repo.get_meta, self.db, _trays_key(printer)) or "{}")
            state.applied = {int(k): rfid.TrayTag(bool(v[0]), v[1]) for k, v in trays.items()}
            kept = json.loads(await asyncio.to_thread(repo.get_meta, self.db, _kept_key(printer)) or "[]")
            state.kept = {(int(t), str(tag), int(s)) for t, tag, s in kept}
        return state

    async def _current_tag(self, printer: str, tray: int) -> str | None:
        state = await self._state(printer)
        view = state.latest.tray(tray) if state.latest is not None else None
        return rfid.tray_tag(view) if view is not None and view.present else None


def _trays_key(printer: str) -> str:
    return f"rfid.trays.{printer}"


def _kept_key(printer: str) -> str:
    return f"rfid.kept.{printer}"
