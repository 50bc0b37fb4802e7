"""Issue 9 item 2: a bill whose spool was deleted in Spoolman waits for the tray's next spool (never rejected
for ever), wherever the deletion shows: the GET before sending, the ``use`` itself, or a settlement."""

from __future__ import annotations

import pytest
from ledger_helpers import PRINTER, FaultyClient, Line, assign, make_outbox, new_job, seed_spools, used_mm
from ledger_rows import ledger_deliveries, ledger_entries

from server.billing import attention, backlog, ledger
from server.billing.attention import Selector
from server.billing.errors import NothingToDo
from server.billing.settlement import DELIVERED, READY, REJECTED, WAITING_SPOOL
from server.db import Database, LedgerEntry, repo
from server.db.models import utcnow
from server.sim.spoolman import SpoolmanStandin, SpoolmanStore
from server.spoolman import Spool, SpoolmanClient, SpoolmanRejected, SpoolmanUnreachable

MM = 0.01
TRAY = 1


def bill(db: Database, job: int, layer: int, mm: float) -> None:
    ledger.record_bills(db, job, [Line(layer, 0, mm)], {0: TRAY})


def states(db: Database) -> list[tuple[int | None, str]]:
    return [(e.spool_id, e.state) for e in ledger_entries(db)]


class DeletedOnTheWay(FaultyClient):
    """Spoolman deletes the spool between our GET and our ``use``: the use answers 404."""

    def __init__(self, inner: SpoolmanClient, store: SpoolmanStore) -> None:
        super().__init__(inner)
        self.store = store

    async def use_spool(self, spool_id: int, *, length_mm: float | None = None, weight_g: float | None = None) -> Spool:
        self.store.delete_spool(spool_id)
        return await super().use_spool(spool_id, length_mm=length_mm, weight_g=weight_g)


class Refusing(FaultyClient):
    async def use_spool(self, spool_id: int, *, length_mm: float | None = None, weight_g: float | None = None) -> Spool:
        raise SpoolmanRejected("use_length must be a number", status_code=422)


async def test_deleted_spool_bills_wait_for_the_trays_next_spool(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    gone, new = seed_spools(standin.store, 2)
    assign(db, TRAY, gone)
    job = new_job(db)
    bill(db, job, 1, 2.0)
    outbox = make_outbox(db, client)
    await outbox.drain()
    assert used_mm(standin.store, gone) == pytest.approx(2.0, abs=MM)

    standin.store.delete_spool(gone)  # mid-print
    bill(db, job, 2, 3.0)
    bill(db, job, 3, 4.0)
    await outbox.drain()
    assert states(db) == [(gone, DELIVERED), (None, WAITING_SPOOL), (None, WAITING_SPOOL)]
    assert all(e.error == f"spool #{gone} was deleted in Spoolman" for e in ledger_entries(db)[1:])
    # The tray no longer points at the deleted spool: new bills wait too, nothing bounces.
    assert repo.get_assignment(db, PRINTER, TRAY) is None
    bill(db, job, 4, 5.0)
    assert not await outbox.deliver_pending()
    assert states(db)[-1] == (None, WAITING_SPOOL)
    waiting = backlog.backlog(db).waiting
    assert [(w.tray, w.state, w.count) for w in waiting] == [(TRAY, WAITING_SPOOL, 3)]

    _assignment, released = ledger.assign_and_release(db, PRINTER, TRAY, new)
    assert released == 3
    await outbox.drain()
    assert states(db) == [(gone, DELIVERED)] + [(new, DELIVERED)] * 3
    assert used_mm(standin.store, new) == pytest.approx(12.0, abs=MM)


async def test_a_tray_already_holding_another_spool_takes_the_bills_at_once(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    gone, new = seed_spools(standin.store, 2)
    assign(db, TRAY, gone)
    job = new_job(db)
    bill(db, job, 1, 2.5)
    standin.store.delete_spool(gone)
    assign(db, TRAY, new)  # swapped in before the outbox noticed
    await make_outbox(db, client).drain()
    assert states(db) == [(new, DELIVERED)]
    assert used_mm(standin.store, new) == pytest.approx(2.5, abs=MM)
    assert repo.get_assignment(db, PRINTER, TRAY) is not None


async def test_spool_deleted_between_the_read_and_the_use(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    gone, new = seed_spools(standin.store, 2)
    assign(db, TRAY, gone)
    bill(db, new_job(db), 1, 2.0)
    await make_outbox(db, DeletedOnTheWay(client, standin.store)).drain()
    (entry,) = ledger_entries(db)
    assert (entry.spool_id, entry.state, entry.delivery_id) == (None, WAITING_SPOOL, None)
    assert entry.error and f"#{gone}" in entry.error
    assert ledger.on_assignment(db, PRINTER, TRAY, new) == 1
    await make_outbox(db, client).drain()
    assert used_mm(standin.store, new) == pytest.approx(2.0, abs=MM)


async def test_spool_deleted_before_a_lost_request_was_settled(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    gone, new = seed_spools(standin.store, 2)
    assign(db, TRAY, gone)
    bill(db, new_job(db), 1, 2.0)
    outbox = make_outbox(db, FaultyClient(client, ["lost_request"]))
    with pytest.raises(SpoolmanUnreachable):
        await outbox.deliver_pending()
    standin.store.delete_spool(gone)
    await outbox.drain()
    assert states(db) == [(None, WAITING_SPOOL)]
    assert ledger.on_assignment(db, PRINTER, TRAY, new) == 1
    await outbox.drain()
    assert states(db) == [(new, DELIVERED)]
    assert used_mm(standin.store, new) == pytest.approx(2.0, abs=MM)


async def test_an_entry_without_a_tray_whose_spool_is_gone_stays_rejected(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    """A spool-specific entry (a correction) has no tray whose next spool could take it."""
    (gone,) = seed_spools(standin.store, 1)
    job = new_job(db)
    now = utcnow()
    with db.session() as session:
        session.add(LedgerEntry(job_id=job, printer=PRINTER, layer=0, filament_index=0, tray=None, spool_id=gone,
                                mm=-4.0, grams=0.0, state=READY, created_at=now, updated_at=now))
        session.commit()
    standin.store.delete_spool(gone)
    await make_outbox(db, client).drain()
    (entry,) = ledger_entries(db)
    assert (entry.spool_id, entry.state) == (gone, REJECTED)
    assert entry.error == f"spool #{gone} was deleted in Spoolman"


async def test_other_refusals_stay_rejected(db: Database, standin: SpoolmanStandin, client: SpoolmanClient) -> None:
    (spool,) = seed_spools(standin.store, 1)
    assign(db, TRAY, spool)
    bill(db, new_job(db), 1, 2.0)
    await make_outbox(db, Refusing(client)).drain()
    (entry,) = ledger_entries(db)
    assert (entry.spool_id, entry.state) == (spool, REJECTED)
    assert entry.error and "use_length" in entry.error
    assert repo.get_assignment(db, PRINTER, TRAY) is not None


async def test_send_again_requeues_a_rejected_entry(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    (spool,) = seed_spools(standin.store, 1)
    assign(db, TRAY, spool)
    job = new_job(db)
    bill(db, job, 1, 2.0)
    await make_outbox(db, Refusing(client)).drain()
    refused = Selector(job, REJECTED, spool_id=spool)
    assert attention.retry(db, refused) == 1  # "Send again" in the web app
    with pytest.raises(NothingToDo):
        attention.retry(db, refused)  # only rejected ones: the bill is queued now
    cleared: list[tuple[str, int]] = []
    await make_outbox(db, client, on_slot_cleared=lambda printer, tray: cleared.append((printer, tray))).drain()
    assert states(db) == [(spool, DELIVERED)]
    assert used_mm(standin.store, spool) == pytest.approx(2.0, abs=MM)
    assert cleared == []


async def test_the_emptied_tray_is_announced(db: Database, standin: SpoolmanStandin, client: SpoolmanClient) -> None:
    (gone,) = seed_spools(standin.store, 1)
    assign(db, TRAY, gone)
    bill(db, new_job(db), 1, 2.0)
    standin.store.delete_spool(gone)
    cleared: list[tuple[str, int]] = []
    await make_outbox(db, client, on_slot_cleared=lambda printer, tray: cleared.append((printer, tray))).drain()
    assert cleared == [(PRINTER, TRAY)]


async def test_a_spool_deleted_between_the_read_and_the_use_frees_its_bills_at_once(
    db: Database, standin: SpoolmanStandin, client: SpoolmanClient
) -> None:
    """The 404 on the ``use`` proves nothing was applied: no settlement grace (an hour here) is waited. The tray
    already holds another spool, so the bill goes on to it in the same drain."""
    new, gone = seed_spools(standin.store, 2)  # the deleted spool's id differs from the request's (1)
    assign(db, TRAY, gone)
    bill(db, new_job(db), 1, 2.0)

    class SwappedThenDeleted(FaultyClient):
        async def use_spool(self, spool_id: int, *, length_mm: float | None = None,
                            weight_g: float | None = None) -> Spool:
            if spool_id == gone:  # the person put the next spool in, then deleted this one in Spoolman
                assign(db, TRAY, new)
                standin.store.delete_spool(gone)
            return await super().use_spool(spool_id, length_mm=length_mm, weight_g=weight_g)

    await make_outbox(db, SwappedThenDeleted(client), settle_grace=3600).drain()
    assert states(db) == [(new, DELIVERED)]
    assert used_mm(standin.store, new) == pytest.approx(2.0, abs=MM)
    assert [(d.spool_id, d.state) for d in ledger_deliveries(db)] == [(gone, REJECTED), (new, DELIVERED)]
