"""Requests a printer refuses (authorization control) or never answers: the pure watch (issue 10)."""

from __future__ import annotations

from server.printer.refusals import LIMITED, RequestWatch, answered, refusal

REFUSED_PUSHALL = {"pushing": {"command": "pushall", "sequence_id": "0", "result": "failed",
                               "reason": "authorization failed", "err_code": 84033543}}
REFUSED_VERSION = {"info": {"command": "get_version", "sequence_id": "0", "result": "failed", "err_code": 84033543}}
VERSION = {"info": {"command": "get_version", "sequence_id": "0", "module": [{"name": "ota", "sw_ver": "1.0"}]}}
FULL = {"print": {"command": "push_status", "msg": 0, "gcode_state": "IDLE"}}
DELTA = {"print": {"command": "push_status", "msg": 1, "layer_num": 3}}


def test_error_answers_are_refusals() -> None:
    assert refusal(REFUSED_PUSHALL) == ("pushall", "error 84033543 (authorization failed)")
    assert refusal(REFUSED_VERSION) == ("get_version", "error 84033543")
    assert refusal({"print": {"command": "pushall", "result": "fail"}}) == ("pushall", "refused")
    for payload in (VERSION, FULL, DELTA, {"print": {"command": "project_file", "result": "failed"}}, {}):
        assert refusal(payload) is None


def test_full_reports_and_version_lists_are_answers() -> None:
    assert answered(FULL) == {"pushall"} and answered(VERSION) == {"get_version"}
    assert answered(DELTA) == set() and answered(REFUSED_VERSION) == set()


def test_a_refused_request_makes_the_printer_limited_with_the_fix() -> None:
    watch = RequestWatch()
    watch.sent("pushall", 0.0)
    watch.sent("get_version", 0.0)
    watch.saw(DELTA)
    assert watch.limited is None and watch.pending
    watch.saw(REFUSED_PUSHALL)
    watch.saw(VERSION)
    text = watch.limited
    assert text is not None and text.startswith(LIMITED) and "84033543" in text
    assert "LAN-only mode" in text and "Developer Mode" in text and "AMS slots appear" in text
    assert not watch.pending
    watch.saw(FULL)  # a later full report (the mode changed): no longer limited
    assert watch.limited is None


def test_no_answer_within_the_timeout_counts_as_refused() -> None:
    watch = RequestWatch()
    watch.sent("pushall", 10.0)
    assert watch.deadline(20.0) == 30.0
    watch.expire(29.0, 20.0)
    assert watch.limited is None
    watch.expire(30.0, 20.0)
    assert "pushall: no answer within 20 s" in str(watch.limited)
    assert watch.deadline(20.0) is None
