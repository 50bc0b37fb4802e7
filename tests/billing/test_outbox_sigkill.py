"""A real process running the outbox is SIGKILLed while Spoolman has applied its request but the
answer has not come back; a new outbox settles the request from the SQLite file and never re-sends it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest
from ledger_helpers import (
    DroppingProxy,
    Line,
    assign,
    make_outbox,
    new_job,
    open_db,
    quick_client,
    seed_spools,
    used_mm,
)
from ledger_rows import ledger_entries

from server.billing import ledger
from server.billing.settlement import DELIVERED, SENDING
from server.sim.spoolman import SpoolmanStandin

ROOT = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from server.db import open_database
    from server.spoolman import SpoolmanClient
    from server.billing.outbox import Outbox

    async def main() -> None:
        db = open_database(Path(sys.argv[1]))
        async with SpoolmanClient(sys.argv[2], retries=0, timeout=600) as client:
            await Outbox(db, client).drain()

    asyncio.run(main())
    """
)


async def test_process_killed_while_the_answer_is_in_the_air(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    async with SpoolmanStandin() as standin:
        (spool,) = seed_spools(standin.store, 1)
        assign(db, 0, spool)
        job = new_job(db)
        ledger.record_bills(db, job, [Line(1, 0, 8.75), Line(2, 0, 1.25)], {0: 0})

        async with DroppingProxy(standin.port, hold=True) as proxy:
            worker = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                WORKER,
                str(db.path),
                proxy.url,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            try:
                async with asyncio.timeout(60):
                    await proxy.answered.wait()
            finally:
                worker.send_signal(signal.SIGKILL)
                await worker.wait()
        assert worker.returncode == -signal.SIGKILL
        assert [e.state for e in ledger_entries(db)] == [SENDING, SENDING]
        assert used_mm(standin.store, spool) == pytest.approx(10.0, abs=0.01)  # applied, answer lost

        async with quick_client(standin.url) as client:
            await make_outbox(db, client).drain()
        assert [e.state for e in ledger_entries(db)] == [DELIVERED, DELIVERED]
        assert used_mm(standin.store, spool) == pytest.approx(10.0, abs=0.01)
