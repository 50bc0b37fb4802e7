import json
from pathlib import Path

import pytest

from server.web.labels import FilamentCode, Label, NotALabel, SpoolCode, label_problem, parse_label

# The same table tests static/labels.js in Chromium (test_scan_browser.py).
CASES = json.loads((Path(__file__).parent / "label_codes.json").read_text())["cases"]


def expected_label(text: str, expected: list[object] | None) -> Label:
    if expected is None:
        return NotALabel(text)
    kind, number = expected
    assert isinstance(number, int)
    return SpoolCode(number) if kind == "spool" else FilamentCode(number)


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[repr(c[0]) for c in CASES])
def test_label_codes(text: str, expected: list[object] | None) -> None:
    assert parse_label(text) == expected_label(text, expected)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "No code was given"),
        ("  \n", "No code was given"),
        ("x" * 3000, "3000 characters long"),
        ("web+spoolman:x-3", "not to a spool or a filament with a valid id"),
        ("WEB+SPOOLMAN:S-0", "not to a spool or a filament with a valid id"),
        ("https://example.org/hello", "“https://example.org/hello” is not a Spoolman label"),
    ],
)
def test_label_problem_says_why_in_words(text: str, words: str) -> None:
    problem = label_problem(text)
    assert words in problem
    assert "web+spoolman:s-<id>" in problem or "Scan the QR code" in problem


def test_label_problem_shortens_long_codes() -> None:
    problem = label_problem("https://example.org/" + "a" * 200)
    assert "…" in problem
    assert len(problem) < 300
