# ruff: noqa: F811  (the rig fixture is imported by name)
"""The very same tray view again (most reports bring it) is not compared with what was applied again, and
nothing that depends on more than the view is skipped: a due retry, a pass that changed what was applied."""

from __future__ import annotations

import pytest
from test_rfid_service import PRINTER, TAG_A, TAG_B, Rig, rig  # noqa: F401 (the fixture)

from server.slots import rfid


async def test_a_due_retry_happens_on_the_very_same_view(rig: Rig) -> None:
    await rig.standin.stop()
    rig.vp.set_tray(0, 0, tray_uuid=TAG_A)
    view = rig.view()
    for _ in range(2):
        await rig.feed(view)
    assert await rig.held() == {}
    await rig.standin.start()
    await rig.feed(view)  # unchanged, but the failed lookup is due again (retry_seconds=0)
    assert await rig.held() == {0: (1, "rfid")}


async def test_the_same_view_after_another_was_applied_is_matched_again(rig: Rig) -> None:
    rig.vp.set_tray(0, 0, tray_uuid=TAG_A)
    first = rig.view()
    await rig.feed(first)
    await rig.feed(first)  # found unchanged: kept as such
    rig.vp.set_tray(0, 0, tray_uuid=TAG_B, type="PETG", color="00AE42FF")
    rig.service.reset(PRINTER)  # a full pass applies the next view without comparing it
    await rig.feed(rig.view())
    assert await rig.held() == {0: (2, "rfid")}
    await rig.feed(first)  # the very same first view, but against what is applied now: a swap
    assert await rig.held() == {0: (1, "rfid")}


async def test_the_same_view_again_is_not_compared_again(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    rig.vp.set_tray(0, 0, tray_uuid=TAG_A)
    view = rig.view()
    await rig.feed(view)
    calls: list[int] = []
    real = rfid.changed_trays

    def counted(*args: object) -> list[int]:
        calls.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(rfid, "changed_trays", counted)
    for _ in range(5):
        await rig.feed(view)
    assert len(calls) == 1
    assert await rig.held() == {0: (1, "rfid")}
