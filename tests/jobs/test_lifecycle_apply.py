"""Applying lifecycle events and resume decisions to a job: its facts and the bills that become
due (the lifecycle state is the machine's: tests/tracking/test_machine.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from snapshots import snap

from server.billing.rules import BillingCheckpoint
from server.jobs.checkpoint import (
    ENDED_OFFLINE,
    CloseAndStartNew,
    ContinueSameJob,
    JobCheckpoint,
    JobKey,
    SettleEndedJob,
)
from server.jobs.lifecycle import (
    CancelConfirmed,
    Failed,
    Finished,
    JobChanged,
    JobStarted,
    LayerReached,
    LifecycleEvent,
    MappingStated,
    Paused,
    Resumed,
    Step,
    apply_event,
    apply_resume,
    observe_trays,
    with_analysis,
)
from tests.billing.test_billing_fake_analysis import FakeAnalysis, FakeToolChange

AT = datetime(2026, 11, 21, 20, 0, tzinfo=UTC)
ANALYSIS = FakeAnalysis(
    {0: {0: 10.0}, 1: {0: 1.0}, 2: {0: 1.0, 1: 2.0}, 3: {1: 3.0}},
    marks={2: [(40, {0: 0.5}), (60, {0: 1.0, 1: 1.0})]},
    tool_changes=(FakeToolChange(0, 0), FakeToolChange(2, 1)),
)
STARTED = JobStarted(JobKey("Cube"), "Cube.3mf", "Cube.3mf", None, {}, announced=False)


def run(*events: LifecycleEvent, analysis: FakeAnalysis | None = ANALYSIS, job: JobCheckpoint | None = None) -> Step:
    bills = []
    for event in events:
        step = apply_event(job, event, analysis, printer="a1", at=AT)
        job = step.job
        bills.extend(step.bills)
    return Step(job, tuple(bills))


def billed_layers(step: Step) -> list[tuple[int, int]]:
    return [(line.layer, line.filament_index) for line in step.bills]


def test_a_started_job_downloads_its_file() -> None:
    step = run(STARTED, analysis=None)
    assert step.job == JobCheckpoint(printer="a1", key=JobKey("Cube"), lifecycle="downloading", file_url="Cube.3mf",
                                     started_at=AT)
    assert step.bills == ()


def test_an_announced_job_keeps_its_stated_mapping() -> None:
    announced = JobStarted(JobKey("Cube", 1, "7", "8"), "https://x/c.3mf", "Cube", 1, {0: 3}, announced=True)
    job = run(announced).job
    assert job is not None and job.announced and job.mapping == {0: 3} and job.tray_for(0) == 3


def test_layers_bill_once_the_analysis_is_known_and_catch_up_when_it_arrives() -> None:
    waiting = run(STARTED, LayerReached(0, 0), LayerReached(3, 70), analysis=None)
    assert waiting.bills == () and waiting.job is not None and waiting.job.last_layer == 3
    caught_up = with_analysis(waiting.job, ANALYSIS)
    assert billed_layers(caught_up) == [(0, 0), (1, 0), (2, 0), (2, 1)]
    assert caught_up.job is not None and caught_up.job.open
    assert caught_up.job.learner.changes == ((0, 0), (2, 1))
    again = with_analysis(caught_up.job, ANALYSIS)
    assert again.bills == ()


def test_finish_bills_everything_left() -> None:
    step = run(STARTED, LayerReached(2, 50), Finished())
    assert billed_layers(step) == [(0, 0), (1, 0), (2, 0), (2, 1), (3, 1)]
    assert step.job is not None and step.job.final_state == "finished" and step.job.ended_at == AT


def test_a_finish_seen_before_the_file_is_analysed_is_settled_later() -> None:
    ended = run(STARTED, LayerReached(2, 50), Finished(), analysis=None).job
    assert ended is not None and ended.final_state == "finished"
    assert billed_layers(with_analysis(ended, ANALYSIS))[-1] == (3, 1)


def test_a_cancel_bills_the_layer_pro_rata_and_says_why() -> None:
    step = run(STARTED, LayerReached(2, 50), Failed(True, 2, 45, 50348044))
    assert [(line.layer, line.mm, line.estimate) for line in step.bills][-1] == (2, 0.5, True)
    job = step.job
    assert job is not None and job.final_state == "cancelled" and job.end_reason == "task cancelled"
    assert job.billing == BillingCheckpoint(billed_through=1, partial_layer=2, settled=True)
    assert run(Finished(), LayerReached(3, 90), job=job).bills == ()


def test_a_late_cancel_code_relabels_the_failed_job_without_billing_more() -> None:
    failed = run(STARTED, LayerReached(2, 50), Failed(False, 2, 45, 0)).job
    assert failed is not None
    step = run(CancelConfirmed(50348044), job=failed)
    assert step.bills == ()
    assert step.job is not None and step.job.final_state == "cancelled" and step.job.end_reason == "task cancelled"
    assert step.job.billing == failed.billing


def test_a_failure_names_its_error() -> None:
    job = run(STARTED, LayerReached(1, 10), Failed(False, 1, 12, 0x07008011)).job
    assert job is not None and job.final_state == "failed" and job.end_reason == "print_error 0x07008011"


def test_pause_and_resume_bill_what_is_due_and_change_no_fact() -> None:
    # Which states they move between is the machine's (test_machine.py).
    downloading = run(STARTED, Paused(None), analysis=None).job
    assert downloading is not None and downloading == run(STARTED, analysis=None).job
    printing = run(STARTED, LayerReached(2, 50), analysis=None).job
    paused = run(Paused(None), job=printing)
    assert billed_layers(paused) == [(0, 0), (1, 0)] and paused.job is not None and paused.job.open
    assert run(Resumed(), job=paused.job).bills == ()


def test_a_stated_mapping_arriving_later_is_kept() -> None:
    job = run(STARTED, MappingStated({0: 7})).job
    assert job is not None and job.tray_for(0) == 7


def test_events_for_a_closed_job_change_nothing() -> None:
    closed = run(STARTED, Finished()).job
    assert run(LayerReached(5, 99), Failed(True, 1, 1), JobChanged(JobKey("Cube")), job=closed).job == closed


def test_a_job_whose_file_is_unobtainable_still_ends() -> None:
    # Marking it untracked is the machine's (test_machine.py).
    job = run(STARTED, analysis=None).job
    assert job is not None
    ended = run(Finished(), job=job, analysis=None)
    assert ended.job is not None and ended.job.final_state == "finished" and ended.bills == ()


def test_tray_reports_teach_the_open_job() -> None:
    job = run(STARTED, LayerReached(0, 0)).job
    assert job is not None
    for tray_now, tray_tar in (("255", "255"), ("255", "3"), ("3", "3")):
        job = observe_trays(job, snap({"print": {"ams": {"tray_now": tray_now, "tray_tar": tray_tar}}}))
    assert job.learned == {0: 3}
    closed = run(Finished(), job=job).job
    assert closed is not None and observe_trays(closed, snap({"ams": {"tray_now": "1", "tray_tar": "1"}})) == closed


# ---- resume ----------------------------------------------------------------------------------------------------


def resumed_job() -> JobCheckpoint:
    job = run(STARTED, LayerReached(2, 50)).job
    assert job is not None
    return job


def test_continue_bills_the_layers_missed() -> None:
    step = apply_resume(resumed_job(), ContinueSameJob(3, 80), ANALYSIS, at=AT)
    assert billed_layers(step) == [(2, 0), (2, 1)]
    assert step.job is not None and step.job.open and step.job.last_layer == 3


def test_continue_notes_the_progress_of_a_job_still_waiting_for_its_file() -> None:
    job = run(STARTED, analysis=None).job
    assert job is not None
    step = apply_resume(job, ContinueSameJob(3, 80), None, at=AT)
    assert step.job is not None and step.bills == () and step.job.last_layer == 3


def test_settle_a_job_that_finished_while_down() -> None:
    step = apply_resume(resumed_job(), SettleEndedJob("finished", 3, 100), ANALYSIS, at=AT)
    assert billed_layers(step)[-1] == (3, 1)
    assert step.job is not None and step.job.final_state == "finished"


def test_settle_a_job_that_was_cancelled_while_down() -> None:
    step = apply_resume(resumed_job(), SettleEndedJob("cancelled", 2, 65), ANALYSIS, at=AT)
    assert [(line.layer, line.mm, line.estimate) for line in step.bills] == [(2, 1.0, True), (2, 1.0, True)]
    assert step.job is not None and step.job.final_state == "cancelled"


def test_close_a_job_that_ended_while_offline() -> None:
    step = apply_resume(resumed_job(), CloseAndStartNew(start_new=True), ANALYSIS, at=AT)
    job = step.job
    assert job is not None and job.final_state == "failed" and job.end_reason == ENDED_OFFLINE
    assert job.billing.settled and job.billing.billed_through == 1
