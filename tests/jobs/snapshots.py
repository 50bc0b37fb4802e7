"""Printer snapshots from the plain states the tests write out (a merged `print` state, or a message
holding one): what the printer task makes once per report (``server.printer.snapshot``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.jobs import lifecycle
from server.jobs.checkpoint import JobCheckpoint, JobKey, ResumeDecision, decide_resume, decide_resume_from_reports
from server.printer.snapshot import PrinterSnapshot, PrintStatus, ProjectFile, Reported, project_file, snapshot
from server.printer.state import report_body


def snap(state: Mapping[str, Any] | None = None, *, report: Mapping[str, Any] | None = None) -> PrinterSnapshot:
    """The snapshot of a merged state (``report``: the fields the report itself carried)."""
    return snapshot(report_body(state or {}), report=None if report is None else report_body(report))


def status(state: Mapping[str, Any]) -> PrintStatus:
    return snap(state).status


def echo_of(echo: Mapping[str, Any] | None) -> ProjectFile | None:
    return None if echo is None else project_file(echo)


def reported(fields: Mapping[str, Any]) -> Reported:
    """What deltas carrying these print fields reported."""
    return Reported().add(snap(fields, report=fields))


def events_between(job: JobCheckpoint | None, previous: Mapping[str, Any], current: Mapping[str, Any],
           echo: Mapping[str, Any] | None = None) -> list[lifecycle.LifecycleEvent]:
    """``lifecycle.derive_events`` between two written-out states."""
    return lifecycle.derive_events(job, snap(previous), snap(current), echo_of(echo))


def resume(job: JobCheckpoint, state: Mapping[str, Any]) -> ResumeDecision:
    """``checkpoint.decide_resume`` against a written-out state."""
    return decide_resume(job, status(state))


def key_of(state: Mapping[str, Any]) -> JobKey:
    return JobKey.of(status(state))


def key_of_echo(echo: Mapping[str, Any]) -> JobKey:
    pf = echo_of(echo)
    assert pf is not None
    return JobKey.from_echo(pf)


def resume_from_reports(job: JobCheckpoint, fields: Mapping[str, Any]) -> ResumeDecision | None:
    """``checkpoint.decide_resume_from_reports`` after deltas that carried these print fields."""
    return decide_resume_from_reports(job, reported(fields))
