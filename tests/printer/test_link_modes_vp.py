"""The link against the virtual printer in each mode: a printer that refuses (or never answers) requests is
reported once per connection and asked again only on the slow retry; one that answers never is (issue 10)."""

from __future__ import annotations

from pathlib import Path

import pytest
from printer_links import ACCESS_CODE, config_for, running_link

from server.printer.link import PrinterLink
from server.printer.refusals import LIMITED
from server.printer.tls import PinStore
from server.retry import Backoff
from server.sim.printer import VirtualPrinter


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("link-mode-certs")


def _link(vp: VirtualPrinter, tmp_path: Path, told: list[str | None], **kwargs: float) -> PrinterLink:
    link = PrinterLink(config_for(vp), PinStore(tmp_path), backoff=Backoff(first=0.05, cap=0.2), **kwargs)

    async def on_limited(text: str | None) -> None:
        told.append(text)
        if getattr(link, "recorder", None) is not None:  # wake the test's wait_for
            async with link.recorder.changed:
                link.recorder.changed.notify_all()

    link.on_limited = on_limited
    link.recorder = None  # type: ignore[attr-defined]
    return link


def _asked(vp: VirtualPrinter) -> list[str]:
    return [str(next(iter(r.values())).get("command")) for r in vp.requests]


async def test_refused_requests_are_reported_once_per_connection_and_not_retried(tmp_path: Path,
                                                                              cert_dir: Path) -> None:
    async with VirtualPrinter(access_code=ACCESS_CODE, model="P1S", cert_dir=cert_dir, mode="cloud") as vp:
        told: list[str | None] = []
        link = _link(vp, tmp_path, told)
        async with running_link(link) as rec:
            link.recorder = rec  # type: ignore[attr-defined]
            await rec.wait_for(lambda: link.limited is not None and bool(told))
            for layer in range(1, 6):  # reports keep flowing
                await vp.publish_report({"print": {"command": "push_status", "msg": 1, "layer_num": layer}})
            await rec.wait_for(lambda: rec.state.get("layer_num") == 5)
            assert told == [link.limited]
            assert str(told[0]).startswith(LIMITED) and "84033543" in str(told[0])
            assert sorted(_asked(vp)) == ["get_version", "pushall"]  # no retry loop
            # The refusals themselves carry no state: they never reach the printer task.
            assert not any("pushing" in m or "info" in m for m in rec.messages)
            await vp.drop_connections()
            await rec.wait_for(lambda: len(told) == 2)  # said again on the new connection, once
            assert told[1] == told[0]
            assert sorted(_asked(vp)) == ["get_version", "pushall"]  # the slow retry is not due yet


async def test_a_printer_that_never_answers_is_limited_after_the_timeout(tmp_path: Path, cert_dir: Path) -> None:
    async with VirtualPrinter(access_code=ACCESS_CODE, model="P1S", cert_dir=cert_dir, mode="silent") as vp:
        told: list[str | None] = []
        link = _link(vp, tmp_path, told, answer_timeout=0.3)
        async with running_link(link) as rec:
            link.recorder = rec  # type: ignore[attr-defined]
            await rec.wait_for(lambda: bool(told))
        assert "no answer within 0.3 s" in str(told[0])


@pytest.mark.parametrize("mode", ["lan", "developer"])
async def test_a_printer_that_answers_is_never_limited(tmp_path: Path, cert_dir: Path, mode: str) -> None:
    async with VirtualPrinter(access_code=ACCESS_CODE, model="P1S", cert_dir=cert_dir, mode=mode) as vp:
        told: list[str | None] = []
        link = _link(vp, tmp_path, told, answer_timeout=5.0)
        async with running_link(link) as rec:
            link.recorder = rec  # type: ignore[attr-defined]
            await rec.wait_for(lambda: "gcode_state" in rec.state and any("info" in m for m in rec.messages))
            assert not link.watch.pending and link.limited is None and told == []


async def test_the_slow_retry_asks_again_and_an_answer_lifts_the_limit(tmp_path: Path, cert_dir: Path) -> None:
    """The printer switched to LAN-only mode: the next slow retry gets answers, and the card clears."""
    async with VirtualPrinter(access_code=ACCESS_CODE, model="P1S", cert_dir=cert_dir, mode="cloud") as vp:
        told: list[str | None] = []
        link = _link(vp, tmp_path, told, refused_retry=0.5, pushall_interval=0.1)
        async with running_link(link) as rec:
            link.recorder = rec  # type: ignore[attr-defined]
            await rec.wait_for(lambda: bool(told) and told[-1] is not None)
            vp.mode = "lan"
            await rec.wait_for(lambda: told[-1] is None)
            assert link.limited is None and "gcode_state" in rec.state
