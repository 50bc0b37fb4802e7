"""Why a farm run's billing was not exact, per printer: pure functions over rows read from the database.

The counts are ``bench.faults``' accounting unchanged (``LayerCounts``): a lost layer stays lost and
fails the run whatever its job says. On top of it, each printer with lost layers is sorted as
**explained** when one of its jobs carries a reason a person sees (the job's end reason, other than the
ordinary "task cancelled" every farm print ends with, or its untracked reason), or a bill of a lost
layer carries an error; **unexplained** otherwise. The tie is per printer, not per layer: a lost layer
has no bill, so nothing in the ledger says which job should have billed it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.faults.accounting import Bill, LayerCounts
from server.jobs.lifecycle import CANCELLED_REASON

JobRow = tuple[int, str, Any, str | None, str | None]  # jobs: id, state, final, reason, checkpoint_json
SHOWN = 20  # printers explained on the console; judgement.json holds them all


@dataclass(frozen=True)
class JobFacts:
    """One job row and what its checkpoint says about the job's end and billing."""

    id: int
    state: str  # the row's lifecycle state (the checkpoint's ``lifecycle``)
    final: bool
    reason: str | None  # the row's: the end reason, else the untracked reason
    final_state: str | None = None
    end_reason: str | None = None
    untracked_reason: str | None = None
    billed_through: int | None = None  # the last layer billed whole (-1: nothing yet)
    partial_layer: int | None = None
    settled: bool | None = None
    last_layer: int | None = None  # the last layer the tracker saw this job print
    last_percent: int | None = None

    @property
    def closed(self) -> bool:
        """Final, and billed to its end or given up on with a reason: what the bench's drain waits for."""
        return self.final and bool(self.settled or self.untracked_reason is not None)

    @property
    def visible_reasons(self) -> list[str]:
        """Reasons a person sees for this job's billing to stop short; a cancel bills pro rata, so it is none."""
        found = [self.untracked_reason, self.end_reason, self.reason]
        return list(dict.fromkeys(r for r in found if r and r != CANCELLED_REASON))


def job_facts(row: JobRow) -> JobFacts:
    job_id, state, final, reason, checkpoint_json = row
    checkpoint: dict[str, Any] = json.loads(checkpoint_json or "{}")
    billing = checkpoint.get("billing") or {}
    return JobFacts(
        id=int(job_id), state=state, final=bool(final), reason=reason,
        final_state=checkpoint.get("final_state"), end_reason=checkpoint.get("end_reason"),
        untracked_reason=checkpoint.get("untracked_reason"), billed_through=billing.get("billed_through"),
        partial_layer=billing.get("partial_layer"), settled=billing.get("settled"),
        last_layer=checkpoint.get("last_layer"), last_percent=checkpoint.get("last_percent"),
    )  # fmt: skip


@dataclass(frozen=True)
class PrinterJudgement:
    printer: str
    file: str
    cancelled_at: tuple[int, int] | None  # (layer, mc_percent) the simulator cancelled at
    finished: bool  # the simulator printed the file to its end
    lost_keys: list[int]
    twice_keys: list[int]
    waiting_keys: list[int]
    pending: int  # layers still queued or in flight (the run did not drain)
    spools_off: dict[int, float]  # spool -> Spoolman minus (ledger + foreign), mm
    jobs: list[JobFacts]
    ledger_errors: list[str] = field(default_factory=list)  # errors on bills of the lost layers

    @property
    def open_jobs(self) -> list[int]:
        return [job.id for job in self.jobs if not job.closed]

    @property
    def exact(self) -> bool:
        return not (self.lost_keys or self.twice_keys or self.waiting_keys or self.pending or self.spools_off
                    or self.open_jobs)

    @property
    def reasons(self) -> list[str]:
        return list(dict.fromkeys(r for job in self.jobs for r in job.visible_reasons))

    @property
    def explained(self) -> bool:
        """Lost layers next to a visible reason (see the module's note: per printer, not per layer)."""
        return bool(self.lost_keys) and bool(self.reasons or self.ledger_errors)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["jobs"] = [{**asdict(job), "closed": job.closed, "visible_reasons": job.visible_reasons}
                        for job in self.jobs]
        data["spools_off"] = {str(spool): round(mm, 3) for spool, mm in self.spools_off.items()}
        data["lost"] = "explained" if self.explained else "unexplained" if self.lost_keys else None
        return data


def judge_printer(printer: str, file: str, cancelled_at: tuple[int, int] | None, finished: bool,
                  counts: LayerCounts, bills: Iterable[Bill], jobs: Iterable[JobRow],
                  spools_off: dict[int, float]) -> PrinterJudgement:
    lost = set(counts.lost_keys)
    errors = list(dict.fromkeys(b.error for b in bills if b.layer in lost and b.error))
    return PrinterJudgement(printer, file, cancelled_at, finished, list(counts.lost_keys), list(counts.twice_keys),
                            list(counts.waiting_keys), counts.pending, dict(spools_off),
                            [job_facts(row) for row in sorted(jobs, key=lambda r: r[0])], errors)


def lost_split(judgements: Iterable[PrinterJudgement]) -> tuple[int, int]:
    """(lost layers explained, lost layers unexplained)."""
    explained = unexplained = 0
    for judgement in judgements:
        if judgement.explained:
            explained += len(judgement.lost_keys)
        else:
            unexplained += len(judgement.lost_keys)
    return explained, unexplained


def layer_ranges(keys: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"`` (0 is the prelude)."""
    runs: list[list[int]] = []
    for key in sorted(set(keys)):
        if runs and key == runs[-1][-1] + 1:
            runs[-1].append(key)
        else:
            runs.append([key])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def _job_text(job: JobFacts) -> str:
    billed = "" if job.billed_through is None else f", billed through {job.billed_through}"
    if job.partial_layer is not None:
        billed += f" + part of {job.partial_layer}"
    settled = ", settled" if job.settled else ""
    why = f", {'; '.join(job.visible_reasons)}" if job.visible_reasons else ""
    return f"job {job.id} {job.state}{' (final)' if job.final else ''}{billed}{settled}{why}"


def explain(judgement: PrinterJudgement) -> str:
    """One or two lines: the layers not exact, how the simulator ended, and the jobs with their reasons."""
    end = ("finished" if judgement.finished else f"cancelled L{judgement.cancelled_at[0]} @{judgement.cancelled_at[1]}%"
           if judgement.cancelled_at else "still printing")
    parts = [f"{name} {layer_ranges(keys)}" for name, keys in
             (("lost", judgement.lost_keys), ("twice", judgement.twice_keys), ("waiting", judgement.waiting_keys))
             if keys]
    if judgement.pending:
        parts.append(f"{judgement.pending} pending")
    if judgement.open_jobs:
        parts.append(f"jobs not closed {judgement.open_jobs}")
    if judgement.spools_off:
        parts.append("spools off " + ", ".join(f"{s}: {mm:+.2f} mm" for s, mm in judgement.spools_off.items()))
    verdict = f" -> {'explained' if judgement.explained else 'unexplained'}" if judgement.lost_keys else ""
    jobs = "; ".join(_job_text(job) for job in judgement.jobs) or "no job recorded"
    errors = f"; bill errors: {'; '.join(judgement.ledger_errors)}" if judgement.ledger_errors else ""
    return (f"  {judgement.printer} ({judgement.file}, {end}): {', '.join(parts)}{verdict}\n"
            f"      {jobs}{errors}")


def explanations(printers: int, judgements: Sequence[PrinterJudgement], kept: bool, drained: bool = True,
                 shown: int = SHOWN) -> list[str]:
    """The console's account of one N's printers not exact (nothing when all are)."""
    wrong = [j for j in judgements if not j.exact]
    if not wrong:
        # The judge reads the database a few seconds after the drain wait gave up: it may have drained since.
        return [] if drained else [f"{printers} printers: not drained in time, yet every printer was exact when judged"]
    explained, unexplained = lost_split(wrong)
    lines = [f"{printers} printers: {len(wrong)} not exact; lost layers {explained} explained "
             f"(a job's visible reason), {unexplained} unexplained"]
    lines += [explain(j) for j in wrong[:shown]]
    if len(wrong) > shown:
        where = "see judgement.json" if kept else "--keep DIR writes them all to judgement.json"
        lines.append(f"  and {len(wrong) - shown} more, {where}")
    return lines


def judgement_document(printers: int, summary: dict[str, Any],
                       judgements: Iterable[PrinterJudgement]) -> dict[str, Any]:
    """``judgement.json``: the run's figures (``summary``) and every printer whose billing is not exact."""
    wrong = [j for j in judgements if not j.exact]
    explained, unexplained = lost_split(wrong)
    return {"printers": printers, **summary, "lost_explained": explained, "lost_unexplained": unexplained,
            "not_exact": [j.to_dict() for j in wrong]}
