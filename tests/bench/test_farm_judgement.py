"""bench.farm's judgement: why a printer's billing was not exact, from hand-made job rows and bills."""

from __future__ import annotations

import json
from dataclasses import replace

from bench.farm.judgement import (
    JobRow,
    PrinterJudgement,
    explanations,
    judge_printer,
    judgement_document,
    layer_ranges,
    lost_split,
)
from bench.faults.accounting import Bill, count_layers
from server.billing.rules import BillingCheckpoint
from server.jobs.checkpoint import ENDED_OFFLINE, JobCheckpoint, JobKey
from server.jobs.lifecycle import CANCELLED_REASON

OWED = {0: {0: 5.0}, 1: {0: 2.0}, 2: {0: 2.0}, 3: {0: 2.0}, 4: {0: 1.0}}  # cancelled in layer 4


def job_row(job_id: int, checkpoint: JobCheckpoint) -> JobRow:
    """A jobs row as the tracker writes it (``server.jobs.store.columns``): the row's reason is the end
    reason, else the untracked one; the checkpoint is the real ``to_dict``."""
    reason = checkpoint.end_reason or checkpoint.untracked_reason
    return job_id, checkpoint.lifecycle, checkpoint.final_state is not None, reason, json.dumps(checkpoint.to_dict())


def ended(reason: str | None, billed_through: int, settled: bool = True, untracked: str | None = None) -> JobCheckpoint:
    return JobCheckpoint(printer="Farm 000 P1S", key=JobKey("cube"), lifecycle="cancelled", final_state="cancelled",
                         end_reason=reason, untracked_reason=untracked, last_layer=billed_through + 1,
                         billing=BillingCheckpoint(billed_through=billed_through, partial_layer=None, settled=settled))


def bills(layers: range, state: str = "delivered") -> list[Bill]:
    return [Bill(layer, 0, OWED[layer][0], 11, state) for layer in layers]


def judged(name: str, billed: list[Bill], jobs: list[JobRow],
           spools_off: dict[int, float] | None = None) -> PrinterJudgement:
    return judge_printer(name, "cube.gcode.3mf", (4, 50), False, count_layers(OWED, billed), billed, jobs,
                         spools_off or {})


def test_a_job_row_reads_its_checkpoint() -> None:
    judgement = judged("Farm 000 P1S", bills(range(0, 2)), [job_row(7, ended(ENDED_OFFLINE, 1, untracked=None))])
    (job,) = judgement.jobs
    assert (job.id, job.state, job.final, job.reason) == (7, "cancelled", True, ENDED_OFFLINE)
    assert (job.final_state, job.end_reason, job.untracked_reason) == ("cancelled", ENDED_OFFLINE, None)
    assert (job.billed_through, job.partial_layer, job.settled, job.last_layer) == (1, None, True, 2)
    assert job.closed and job.visible_reasons == [ENDED_OFFLINE]


def test_lost_layers_are_explained_only_by_a_reason_other_than_the_cancel() -> None:
    offline = judged("Farm 000 P1S", bills(range(0, 2)), [job_row(1, ended(ENDED_OFFLINE, 1))])
    cancelled = judged("Farm 001 X1C", bills(range(0, 3)), [job_row(2, ended(CANCELLED_REASON, 2))])
    untracked = judged("Farm 002 P1S", [], [job_row(3, ended(None, -1, settled=False, untracked="no file"))])
    unrecorded = judged("Farm 003 X1C", [], [])
    assert offline.lost_keys == [2, 3, 4] and offline.explained
    assert cancelled.lost_keys == [3, 4] and not cancelled.explained and cancelled.reasons == []
    assert untracked.lost_keys == [0, 1, 2, 3, 4] and untracked.explained and untracked.reasons == ["no file"]
    assert not unrecorded.jobs and not unrecorded.explained
    assert lost_split([offline, cancelled, untracked, unrecorded]) == (3 + 5, 2 + 5)


def test_an_error_on_a_bill_of_a_lost_layer_explains_it() -> None:
    short = [*bills(range(0, 4)), replace(bills(range(4, 5))[0], mm=0.5, error="Spoolman said no")]
    judgement = judged("Farm 000 P1S", short, [job_row(1, ended(CANCELLED_REASON, 3))])
    assert judgement.lost_keys == [4] and judgement.ledger_errors == ["Spoolman said no"] and judgement.explained


def test_an_exact_printer_is_exact_and_a_drain_or_spool_problem_is_not() -> None:
    job = [job_row(1, ended(CANCELLED_REASON, 3))]
    assert judged("Farm 000 P1S", bills(range(0, 5)), job).exact
    assert not judged("Farm 000 P1S", bills(range(0, 5)), job, {11: 0.5}).exact
    still_open = replace(ended(None, 3, settled=False), final_state=None, lifecycle="printing")
    judgement = judged("Farm 000 P1S", bills(range(0, 5)), [job_row(1, still_open)])
    assert judgement.open_jobs == [1] and not judgement.exact and not judgement.lost_keys
    waiting = judged("Farm 000 P1S", [*bills(range(0, 4)), *bills(range(4, 5), "waiting_tray")], job)
    assert waiting.waiting_keys == [4] and not waiting.exact and not waiting.explained


def test_the_console_names_the_layers_and_reasons_and_stops_at_the_limit() -> None:
    offline = judged("Farm 000 P1S", bills(range(0, 2)), [job_row(1, ended(ENDED_OFFLINE, 1))])
    exact = judged("Farm 009 X1C", bills(range(0, 5)), [job_row(9, ended(CANCELLED_REASON, 3))])
    lines = explanations(200, [offline, exact], kept=True)
    assert lines[0] == "200 printers: 1 not exact; lost layers 3 explained (a job's visible reason), 0 unexplained"
    assert "Farm 000 P1S (cube.gcode.3mf, cancelled L4 @50%): lost 2-4 -> explained" in lines[1]
    assert ENDED_OFFLINE in lines[1] and "billed through 1" in lines[1] and len(lines) == 2
    many = [replace(offline, printer=f"Farm {n:03d}") for n in range(23)]
    lines = explanations(200, many, kept=False, shown=20)
    assert len(lines) == 1 + 20 + 1 and lines[-1] == "  and 3 more, --keep DIR writes them all to judgement.json"
    assert explanations(200, [exact], kept=True) == []
    assert explanations(200, [exact], kept=True, drained=False) == [
        "200 printers: not drained in time, yet every printer was exact when judged"]


def test_the_document_holds_every_printer_not_exact_as_json() -> None:
    offline = judged("Farm 000 P1S", bills(range(0, 2)), [job_row(1, ended(ENDED_OFFLINE, 1))])
    exact = judged("Farm 009 X1C", bills(range(0, 5)), [job_row(9, ended(CANCELLED_REASON, 3))])
    document = json.loads(json.dumps(judgement_document(2, {"lost": 3}, [offline, exact])))
    assert (document["printers"], document["lost"], document["lost_explained"], document["lost_unexplained"]) == (
        2, 3, 3, 0)
    (printer,) = document["not_exact"]
    assert printer["printer"] == "Farm 000 P1S" and printer["lost_keys"] == [2, 3, 4] and printer["lost"] == "explained"
    assert printer["cancelled_at"] == [4, 50] and printer["finished"] is False
    assert printer["jobs"][0]["end_reason"] == ENDED_OFFLINE and printer["jobs"][0]["billed_through"] == 1


def test_layer_ranges() -> None:
    assert layer_ranges([7, 0, 1, 2, 5, 8]) == "0-2, 5, 7-8"
    assert layer_ranges([]) == ""
