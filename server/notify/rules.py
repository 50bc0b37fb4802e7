"""Which observations become which notification: the pure core of ``server.notify``.

The shell (``service``) turns bus events, the ledger and a clock into the observations below and sends
whatever :meth:`Decider.feed` returns. All once-only rules live here, with the time as an input:

- runout: once per job and tray when a forecast says the tray runs out, and once more when the runout
  layer is within ``runout_within_layers`` of the layer billed last;
- job finished/failed/cancelled: once per job, with the grams per spool from the ledger;
- low stock: once when a spool is seen below ``low_stock_g``; again only after it was seen above it;
- attention: when more groups of bills need a person than last seen;
- printer offline / Spoolman unreachable: once an outage has lasted the configured minutes (checked on
  each ``Tick``), and a "back" message when such an outage ends.

State is in memory: after a restart a low spool or waiting bills are told about once more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from server.billing.statements import tray_label
from server.colours import filament_words
from server.config.reach import NotificationsConfig

ENDINGS = {"finished": "job_finished", "failed": "job_failed", "cancelled": "job_cancelled"}


@dataclass(frozen=True)
class Message:
    event: str  # one of server.config.reach.NOTIFY_EVENTS
    printer: str | None
    title: str
    body: str


# --- observations ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forecast:
    """A ``forecast`` event: ``trays`` as published (tray, spool_id, status, runout_layer, ...)."""

    printer: str
    job_id: int
    trays: Sequence[dict[str, Any]]


@dataclass(frozen=True)
class Progress:
    printer: str
    job_id: int
    billed_through: int | None


@dataclass(frozen=True)
class JobEnded:
    printer: str
    job_id: int
    state: str  # finished, failed or cancelled
    name: str
    grams: Sequence[tuple[str, float]]  # (spool in words, grams billed)


@dataclass(frozen=True)
class SpoolLevel:
    spool_id: int
    name: str
    remaining_g: float | None


@dataclass(frozen=True)
class Attention:
    groups: int


@dataclass(frozen=True)
class Reachability:
    """A printer's link (``printer`` set) or Spoolman (``printer`` None) is up or down at ``at`` seconds."""

    printer: str | None
    up: bool
    at: float


@dataclass(frozen=True)
class Tick:
    at: float  # seconds, monotonic


Observation = Forecast | Progress | JobEnded | SpoolLevel | Attention | Reachability | Tick


# --- words ---------------------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """``2 h 10 min``, ``25 min``, ``under a minute``."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _grams(value: float) -> str:
    return f"{value:.1f} g" if value < 10 else f"{value:.0f} g"


def runout_sentence(tray: dict[str, Any]) -> str:
    """``Tray A3 (PLA Black, spool #12) runs out during layer 143 of 200, about 2 h 10 min from now``."""
    what = ", ".join(part for part in (filament_words(tray.get("filament") or "") or None,
                                       f"spool #{tray['spool_id']}" if tray.get("spool_id") else None) if part)
    label = tray_label(tray.get("tray")) or "?"
    sentence = f"Tray {label}{f' ({what})' if what else ''} runs out during layer {tray.get('runout_layer')}"
    if tray.get("total_layers"):
        sentence += f" of {tray['total_layers']}"
    if tray.get("runout_in_s") is not None:
        sentence += f", about {duration(float(tray['runout_in_s']))} from now (at the print's current pace)"
    needed, remaining = tray.get("needed_g"), tray.get("remaining_g")
    if needed is not None and remaining is not None:
        sentence += f": needs {_grams(float(needed))}, {_grams(float(remaining))} left"
    return sentence + "."


# --- the decider ---------------------------------------------------------------------------------------


@dataclass
class _Outage:
    since: float
    told: bool = False


@dataclass
class Decider:
    config: NotificationsConfig
    _runout_told: dict[tuple[int, int], set[str]] = field(default_factory=dict)  # (job, tray) -> {"first","near"}
    _billed: dict[int, int] = field(default_factory=dict)  # job -> layer billed last
    _ended: set[int] = field(default_factory=set)
    _low: set[int] = field(default_factory=set)  # spools told about, until seen above the threshold
    _attention: int = 0
    _outages: dict[str | None, _Outage] = field(default_factory=dict)  # printer name, None for Spoolman

    def feed(self, seen: Observation) -> list[Message]:
        messages = self._decide(seen)
        return [m for m in messages if self.config.wants(m.event, m.printer)]

    def _decide(self, seen: Observation) -> list[Message]:
        match seen:
            case Forecast():
                return self._forecast(seen)
            case Progress(job_id=job_id, billed_through=layer) if layer is not None:
                self._billed[job_id] = max(layer, self._billed.get(job_id, 0))
            case JobEnded():
                return self._job_ended(seen)
            case SpoolLevel():
                return self._spool(seen)
            case Attention(groups=groups):
                before, self._attention = self._attention, groups
                if groups > before:
                    return [Message("attention", None, "Bills need attention",
                                    f"{groups} group{'s' if groups != 1 else ''} of bills need a person "
                                    "(Layerwise's Ledger page).")]
            case Reachability():
                return self._reachability(seen)
            case Tick(at=now):
                return self._overdue(now)
        return []

    def _forecast(self, seen: Forecast) -> list[Message]:
        if seen.job_id in self._ended:  # a forecast computed just before the job ended, published after it
            return []
        messages = []
        layer = self._billed.get(seen.job_id, 0)
        for tray in seen.trays:
            if tray.get("status") != "runs_out" or tray.get("runout_layer") is None:
                continue
            told = self._runout_told.setdefault((seen.job_id, int(tray["tray"])), set())
            within = self.config.runout_within_layers
            near = within > 0 and int(tray["runout_layer"]) - layer <= within
            if "first" in told and ("near" in told or not near):
                continue
            title = "Filament runs out soon" if near else "Filament will run out"
            messages.append(Message("runout", seen.printer, f"{seen.printer}: {title}", runout_sentence(tray)))
            told.add("first")
            if near:
                told.add("near")
        return messages

    def _job_ended(self, seen: JobEnded) -> list[Message]:
        event = ENDINGS.get(seen.state)
        if event is None or seen.job_id in self._ended:
            return []
        self._ended.add(seen.job_id)
        self._billed.pop(seen.job_id, None)
        for key in [key for key in self._runout_told if key[0] == seen.job_id]:
            del self._runout_told[key]
        used = "; ".join(f"{spool}: {_grams(grams)}" for spool, grams in seen.grams) or "no filament billed"
        return [Message(event, seen.printer, f"{seen.printer}: {seen.name} {seen.state}", f"Used {used}.")]

    def _spool(self, seen: SpoolLevel) -> list[Message]:
        threshold = self.config.low_stock_g
        if seen.remaining_g is None or threshold <= 0:
            return []
        if seen.remaining_g >= threshold:
            self._low.discard(seen.spool_id)
            return []
        if seen.spool_id in self._low:
            return []
        self._low.add(seen.spool_id)
        return [Message("low_stock", None, f"Spool #{seen.spool_id} is running low",
                        f"{seen.name} (spool #{seen.spool_id}): {_grams(max(0.0, seen.remaining_g))} left.")]

    def _reachability(self, seen: Reachability) -> list[Message]:
        if not seen.up:
            self._outages.setdefault(seen.printer, _Outage(seen.at))
            return self._overdue(seen.at)
        outage = self._outages.pop(seen.printer, None)
        if outage is None or not outage.told:
            return []
        event, subject = _subject(seen.printer)
        return [Message(event, seen.printer, f"{subject} is back", f"{subject} is reachable again.")]

    def _overdue(self, now: float) -> list[Message]:
        messages = []
        for printer, outage in self._outages.items():
            event, subject = _subject(printer)
            minutes = (self.config.printer_offline_minutes if printer is not None
                       else self.config.spoolman_unreachable_minutes)
            if not outage.told and now - outage.since >= minutes * 60:
                outage.told = True
                verb = "offline" if printer is not None else "unreachable"
                messages.append(Message(event, printer, f"{subject} is {verb}",
                                        f"{subject} has been {verb} for {duration(now - outage.since)}."))
        return messages


def _subject(printer: str | None) -> tuple[str, str]:
    return ("printer_offline", f"Printer {printer}") if printer is not None else ("spoolman_unreachable", "Spoolman")
