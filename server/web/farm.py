"""The farm view's rows: one dense line per printer (pure: from the dashboard's printer view).

A farm of a hundred printers is a hundred screens of cards; its people want to see at a glance which
printers print, which stopped and which need them. A row says the printer's state, progress, layer,
the spool feeding now (with what is left) and its problems, and carries the filter it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.web.i18n import Translator, english
from server.web.views import PrinterOut, SlotOut, all_slots

# Filters a person picks (and the order the page shows them in); "attention" is any row with a problem.
FILTERS = ("all", "printing", "paused", "failed", "offline", "attention")
ACTIVE_STATES = ("RUNNING", "PREPARE", "SLICING")


@dataclass(frozen=True)
class FarmRow:
    name: str
    model: str | None
    state: str  # one of FILTERS' states, or "idle" / "finished"
    state_words: str
    percent: int | None
    layer: int | None
    total_layers: int | None
    job_name: str | None
    spool: str | None  # the spool feeding now, in words
    remaining_g: float | None
    low: bool  # the feeding spool has little left (under LOW_FRACTION of its weight)
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def attention(self) -> bool:
        return bool(self.problems)

    @property
    def search_text(self) -> str:
        return " ".join(filter(None, (self.name, self.model, self.job_name, self.spool))).lower()


LOW_FRACTION = 0.1


def row_state(printer: PrinterOut) -> str:
    if not printer.online:
        return "offline"
    state = (printer.job.state or "IDLE").upper()
    if state in ACTIVE_STATES:
        return "printing"
    if state == "PAUSE":
        return "paused"
    if state == "FAILED":
        return "failed"
    if state == "FINISH":
        return "finished"
    return "idle"


def feeding(printer: PrinterOut) -> SlotOut | None:
    """The slot feeding the nozzle now, if the printer says."""
    return next((slot for slot in all_slots(printer) if slot.active), None)


def problems(printer: PrinterOut, waiting: int, _: Translator = english) -> tuple[str, ...]:
    """What needs a person, in the page's language (``_``)."""
    found = []
    if not printer.online:
        found.append(_("offline"))
    if printer.error and printer.online:
        found.append(printer.error)  # the printer's own words
    if waiting:
        found.append(_.ngettext("%(num)s bill waiting", "%(num)s bills waiting", waiting))
    if printer.spoolman_error:
        found.append(_("Spoolman unreachable"))
    if printer.limited:
        found.append(_("limited"))
    if (printer.job.state or "").upper() == "FAILED":
        found.append(_("print failed"))
    slot = feeding(printer)
    if slot is not None and slot.spool_missing:
        found.append(_("tray %(tray)s: spool deleted", tray=slot.label))
    return tuple(found)


def farm_row(printer: PrinterOut, state_words: str, waiting: int = 0, _: Translator = english) -> FarmRow:
    slot = feeding(printer)
    spool = slot.spool if slot is not None else None
    remaining = spool.remaining_weight if spool is not None else None
    low = spool is not None and spool.remaining_fraction is not None and spool.remaining_fraction < LOW_FRACTION
    spool_words = None
    if slot is not None:
        spool_words = (f"{slot.label}: {spool.name} (#{spool.id})" if spool is not None
                       else _("%(tray)s: no spool", tray=slot.label))
    job = printer.job
    return FarmRow(printer.name, printer.model, row_state(printer), _(state_words), job.percent, job.layer,
                   job.total_layers, job.name, spool_words, remaining, low, problems(printer, waiting, _))


def counts(rows: list[FarmRow]) -> dict[str, int]:
    """How many rows each filter shows."""
    found = dict.fromkeys(FILTERS, 0)
    found["all"] = len(rows)
    for row in rows:
        if row.state in found:
            found[row.state] += 1
        if row.attention:
            found["attention"] += 1
    return found


def shown(row: FarmRow, chosen: str, query: str) -> bool:
    """Whether a row passes the filter and the search (the page does the same in the browser)."""
    if chosen == "attention" and not row.attention:
        return False
    if chosen not in ("all", "attention") and row.state != chosen:
        return False
    return all(word in row.search_text for word in query.lower().split())
