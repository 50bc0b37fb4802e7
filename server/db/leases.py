"""One printer, one owner: instances sharing a PostgreSQL database split the printers by leases.

A lease is a session-level advisory lock (``pg_try_advisory_lock``) held by one dedicated connection
of the instance: PostgreSQL releases it the moment that connection ends, so an instance that dies
(SIGKILL, power cut: the kernel closes its socket) frees its printers at once, and the others take
them at their next round. An instance that loses its connection (a network cut) has lost its leases
too, and stops tracking before it may take any again (``Runtime``). The ``leases`` table only says
who holds what (for the dashboard) and which instances are alive (a heartbeat), to split fairly.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from sqlalchemy import Connection
from sqlmodel import Session

from server.db.engine import Database

LEASE_INTERVAL = 2.0  # seconds between rounds: heartbeat, then take free printers
STALE_AFTER = 10  # seconds without a heartbeat after which an instance counts as gone
OUTBOX = "outbox"  # one instance delivers every bill: two outboxes would settle each other's requests


def printer_resource(name: str) -> str:
    return f"printer:{name}"


def lock_key(resource: str) -> int:
    """A stable signed 64-bit advisory lock key for a resource name."""
    digest = hashlib.sha256(f"layerwise:{resource}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def fair_share(total: int, alive: int) -> int:
    """How many printers one of ``alive`` instances should hold: all of them between them, none idle."""
    return math.ceil(total / max(alive, 1))


def wanted(free: Sequence[str], owned: int, total: int, alive: int) -> int:
    """How many of the free printers to try to take this round."""
    return max(0, min(len(free), fair_share(total, alive) - owned))


class LeaseStore:
    """The instance's lease connection (synchronous: call through ``asyncio.to_thread``)."""

    def __init__(self, db: Database, instance: str) -> None:
        self.db = db
        self.instance = instance
        self._conn: Connection | None = None
        self.pid = 0  # the lease connection's server process: the fence looks for its locks

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self.pid = int(self._conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() or 0)
        return self._conn

    def release(self, resource: str) -> None:
        self._connection().exec_driver_sql(f"SELECT pg_advisory_unlock({lock_key(resource)})")

    def try_take(self, resource: str) -> bool:
        conn = self._connection()
        return bool(conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({lock_key(resource)})").scalar())

    def heartbeat(self, held: Sequence[str]) -> None:
        """Say this instance is alive and what it holds (this also proves the connection still works)."""
        conn = self._connection()
        now = "(NOW() AT TIME ZONE 'UTC')"
        for resource in (f"instance:{self.instance}", *held):
            conn.exec_driver_sql(
                "INSERT INTO leases (resource, instance, heartbeat) VALUES (%(r)s, %(i)s, " + now + ") "
                "ON CONFLICT (resource) DO UPDATE SET instance = EXCLUDED.instance, heartbeat = EXCLUDED.heartbeat",
                {"r": resource, "i": self.instance})

    def alive(self) -> int:
        conn = self._connection()
        return int(conn.exec_driver_sql(
            "SELECT count(*) FROM leases WHERE resource LIKE 'instance:%%' "
            f"AND heartbeat > (NOW() AT TIME ZONE 'UTC') - interval '{STALE_AFTER} seconds'").scalar() or 0)

    def holders(self) -> dict[str, str]:
        """Resource -> instance, for the holders whose heartbeat is recent."""
        conn = self._connection()
        rows = conn.exec_driver_sql(
            "SELECT resource, instance FROM leases "
            f"WHERE heartbeat > (NOW() AT TIME ZONE 'UTC') - interval '{STALE_AFTER} seconds'").all()
        return {str(resource): str(instance) for resource, instance in rows}

    def drop(self) -> None:
        """Close the connection: every lease it held ends with it."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.invalidate()  # never back to the pool: a pooled connection would keep the locks
            finally:
                conn.close()


class LeaseLost(RuntimeError):
    """A write for a printer this instance no longer holds: refused, the new holder bills it."""


def check_held(session: Session, pid: int, resource: str) -> None:
    """The fence: inside a ledger write (under the ledger lock), make sure the lease connection ``pid``
    still holds ``resource``. A lease released or lost (connection gone) makes the write fail and roll
    back, so a bill can never be written by an instance that has handed the printer on."""
    key = lock_key(resource)
    held = session.connection().exec_driver_sql(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = %(pid)s "
        "AND classid = %(high)s AND objid = %(low)s AND objsubid = 1",
        {"pid": pid, "high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF}).scalar()
    if not held:
        raise LeaseLost(f"{resource} is no longer held by this instance")
