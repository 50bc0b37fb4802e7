"""Requests the printer refuses, and the reports that answer them.

Outside LAN-only mode, firmware with "authorization control" answers third-party requests with an error
(``result: failed``, ``err_code`` e.g. 84033543) while its reports keep flowing; some firmware does not
answer at all. Either way there is no full state on connect: the link (``link.py``) says so, and asks
again only rarely."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REQUESTS = ("pushall", "get_version")


ANSWER_TIMEOUT = 20.0  # seconds a request may go unanswered before it counts as refused


REFUSED_RETRY = 420.0  # seconds between asking a printer that refused again (7 min)


LIMITED = "limited: the printer refuses requests"


LIMITED_CONSEQUENCES = ("no full state on connect: AMS slots appear as the printer reports them; "
                        "module versions unknown")


LIMITED_FIX = ("Fix: put the printer in LAN-only mode, or, on firmware with authorization control, "
               "turn on Developer Mode")


def is_full_report(body: dict[str, Any]) -> bool:
    """A report with the printer's whole state: ``msg: 0`` (P1/A1 answer ``pushall`` so), or, from
    printers that always report everything (X1, H2), one with the job and AMS fields."""
    msg = body.get("msg")
    return msg == 0 or (msg is None and "gcode_state" in body and "ams" in body)


def refusal(payload: dict[str, Any]) -> tuple[str, str] | None:
    """(request, why) when ``payload`` is the printer's error answer to one of our requests."""
    for section in payload.values():
        if not isinstance(section, dict) or section.get("command") not in REQUESTS:
            continue
        result = section.get("result")
        code = section.get("err_code")
        failed = isinstance(result, str) and result.lower() in ("fail", "failed", "error")
        coded = isinstance(code, int) and not isinstance(code, bool) and code != 0
        if failed or coded:
            why = f"error {code}" if coded else "refused"
            reason = section.get("reason")
            if isinstance(reason, str) and reason and reason.lower() not in ("fail", "failed"):
                why += f" ({reason[:80]})"
            return str(section["command"]), why
    return None


def answered(payload: dict[str, Any]) -> set[str]:
    """Which of our requests ``payload`` answers (a full report answers pushall)."""
    out: set[str] = set()
    body = payload.get("print")
    if isinstance(body, dict) and body.get("command") in (None, "push_status") and is_full_report(body):
        out.add("pushall")
    info = payload.get("info")
    if isinstance(info, dict) and info.get("command") == "get_version" and refusal({"info": info}) is None:
        out.add("get_version")
    return out


@dataclass
class RequestWatch:
    """Which requests are awaiting an answer, and which the printer refused (pure; times are monotonic)."""

    pending: dict[str, float] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)

    def sent(self, request: str, now: float) -> None:
        self.pending.setdefault(request, now)

    def saw(self, payload: dict[str, Any]) -> None:
        for request in answered(payload):
            self.pending.pop(request, None)
            self.refused.pop(request, None)
        refused = refusal(payload)
        if refused is not None:
            self.pending.pop(refused[0], None)
            self.refused[refused[0]] = refused[1]

    def expire(self, now: float, timeout: float) -> None:
        for request, at in list(self.pending.items()):
            if now - at >= timeout:
                del self.pending[request]
                self.refused[request] = f"no answer within {timeout:g} s"

    def deadline(self, timeout: float) -> float | None:
        return min(self.pending.values()) + timeout if self.pending else None

    @property
    def limited(self) -> str | None:
        """The sentence for the printer card and the log, or None when every request was answered."""
        if not self.refused:
            return None
        whys = "; ".join(f"{request}: {why}" for request, why in sorted(self.refused.items()))
        return f"{LIMITED} ({whys}). {LIMITED_CONSEQUENCES}. {LIMITED_FIX}."
