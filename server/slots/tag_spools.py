"""Spoolman's side of RFID matching: which spool carries a tag, and a spool for a tag never seen.

Spoolman cannot filter spools by an extra field, so a lookup scans the active spools once and keeps the
answers ``lookup_ttl`` seconds. A spool is created for an unknown Bambu tag at most once: the tag is
looked up again under a lock first, and the spools created are remembered in the ``meta`` table.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from server.db import Database, repo
from server.printer.trays import TrayView
from server.slots import rfid
from server.slots.errors import RfidError
from server.spoolman import Spool, SpoolmanClient, SpoolmanError

log = logging.getLogger(__name__)

FIELD_NAME = "Bambu tray UUID"  # the extra field's label in Spoolman's UI
VENDOR_NAME = "Bambu Lab"
_PAGE = 100
_CREATED_KEY = "rfid.created"


class TagSpools:
    def __init__(self, extra_field: str, spoolman: SpoolmanClient | None, db: Database, *, lookup_ttl: float) -> None:
        self.extra_field = extra_field
        self.spoolman = spoolman
        self.db = db
        self.lookup_ttl = lookup_ttl
        self._cache: dict[str, tuple[float, int | None]] = {}
        self._field_ready = False
        self._spoolman_down = False
        self._create_lock = asyncio.Lock()
        self._vendor_id: int | None = None

    def remember(self, tag: str, spool_id: int | None) -> None:
        self._cache[tag] = (time.monotonic(), spool_id)

    def forget(self) -> None:
        self._cache.clear()

    def client(self) -> SpoolmanClient:
        if self.spoolman is None:
            raise RfidError("no Spoolman is configured")
        return self.spoolman

    def note_down(self, error: SpoolmanError) -> None:
        if not self._spoolman_down:
            self._spoolman_down = True
            log.warning("RFID matching waits for Spoolman: %s", error)

    def note_up(self) -> None:
        if self._spoolman_down:
            self._spoolman_down = False
            log.info("RFID matching: Spoolman answers again")

    async def ensure_field(self, client: SpoolmanClient, quiet: bool = False) -> bool:
        """Register the tag field in Spoolman once; False (quiet) or raise while Spoolman is down."""
        if self._field_ready:
            return True
        try:
            await client.ensure_spool_field(self.extra_field, FIELD_NAME)
        except SpoolmanError as error:
            if not quiet:
                raise
            self.note_down(error)
            return False
        self._field_ready = True
        self.note_up()
        return True

    async def lookup(self, tags: set[str]) -> dict[str, int | None]:
        """Tag -> spool carrying it (lowest id if several), from the cache or one scan of Spoolman's spools.
        Tags missing from the answer could not be looked up."""
        now = time.monotonic()
        found = {t: hit[1] for t in tags if (hit := self._cache.get(t)) and now - hit[0] < self.lookup_ttl}
        missing = tags - found.keys()
        if not missing or self.spoolman is None:
            return found
        try:
            scanned = await self.scan(self.spoolman, missing)
        except SpoolmanError as error:
            self.note_down(error)
            return found
        self.note_up()
        for tag in missing:
            ids = scanned.get(tag, [])
            if len(ids) > 1:
                log.warning("RFID tag %s is on several spools %s; using spool %s", tag, ids, ids[0])
            found[tag] = ids[0] if ids else None
            self._cache[tag] = (now, found[tag])
        return found

    async def scan(self, client: SpoolmanClient, tags: set[str]) -> dict[str, list[int]]:
        """Spool ids per tag, read from every active spool (Spoolman cannot filter by extra field)."""
        out: dict[str, list[int]] = {}
        offset = 0
        while True:
            page = await client.list_spools(limit=_PAGE, offset=offset, sort="id:asc")
            for spool in page.items:
                tag = spool_tag(spool, self.extra_field)
                if tag in tags:
                    out.setdefault(tag, []).append(spool.id)
            offset += len(page.items)
            if not page.items or offset >= page.total:
                return {tag: sorted(ids) for tag, ids in out.items()}

    async def create(self, printer: str, action: rfid.Create, tray: TrayView) -> int | None:
        """The spool for an unknown tag: looked up once more, else created. One creation at a time, and
        the tag is always looked up first, so repeated reports, reconnects and a lost answer to an
        earlier create never give a tag a second spool."""
        client = self.client()
        async with self._create_lock:
            await self.ensure_field(client)
            existing = (await self.scan(client, {action.tag})).get(action.tag)
            if existing:
                self._cache[action.tag] = (time.monotonic(), existing[0])
                return existing[0]
            created = json.loads(await asyncio.to_thread(repo.get_meta, self.db, _CREATED_KEY) or "{}")
            if action.tag in created:
                # Ours, but the tag was taken off it (or it was archived): the user decided; do not recreate.
                log.info("RFID tag %s: spool %s created for it earlier no longer carries it; not creating another",
                         action.tag, created[action.tag])
                return None
            filament_id = await self.filament_for(client, action.spool)
            weight = action.spool.weight_g
            used = None
            if weight and tray.remain_percent is not None:
                used = round(weight * (100 - tray.remain_percent) / 100, 1)
            spool = await client.create_spool(
                filament_id, initial_weight=weight, used_weight=used,
                comment=f"created by Layerwise from the RFID tag in {printer} tray {action.tray}",
                extra={self.extra_field: action.tag},
            )
            created[action.tag] = spool.id
            await asyncio.to_thread(repo.set_meta, self.db, _CREATED_KEY, json.dumps(created))
            self._cache[action.tag] = (time.monotonic(), spool.id)
            log.info("RFID: created spool %s for tag %s (%s tray %s)", spool.id, action.tag, printer, action.tray)
            return spool.id

    async def filament_for(self, client: SpoolmanClient, wanted: rfid.NewSpool) -> int:
        """An existing Bambu Lab filament of this material and colour, else a new one."""
        vendor_id = await self.bambu_vendor(client)
        page = await client.list_filaments(vendor_id=vendor_id, material=wanted.material, limit=_PAGE)
        candidates = [
            f for f in page.items
            if (f.material or "").upper() == wanted.material.upper()
            and (f.color_hex or "").upper()[:6] == (wanted.color_hex or "")
        ]
        if candidates:
            named = [f for f in candidates if wanted.name and (f.name or "").lower() == wanted.name.lower()]
            return min(named or candidates, key=lambda f: f.id).id
        filament = await client.create_filament(
            density=wanted.density, diameter=wanted.diameter, name=wanted.name or wanted.material,
            vendor_id=vendor_id, material=wanted.material, weight=wanted.weight_g, color_hex=wanted.color_hex,
        )
        return filament.id

    async def bambu_vendor(self, client: SpoolmanClient) -> int:
        if self._vendor_id is None:
            page = await client.list_vendors(name=VENDOR_NAME, limit=_PAGE)
            exact = [v for v in page.items if v.name.strip().lower() == VENDOR_NAME.lower()]
            vendor = min(exact, key=lambda v: v.id) if exact else await client.create_vendor(VENDOR_NAME)
            self._vendor_id = vendor.id
        return self._vendor_id


def spool_tag(spool: Spool, key: str) -> str | None:
    value = spool.extra_value(key)
    return value.strip().upper() if isinstance(value, str) and value.strip() else None
