"""The result API's edges: stored documents it refuses (and how it says so), and layer numbers out of
range. Written for mutants bench.mutation found surviving (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.analysis import PrintAnalysis, analyze_file
from server.analysis.result import FORMAT

P2S = Path(__file__).parents[1] / "fixtures" / "print-files" / "p2s-example-bs2.05.gcode.3mf"


@pytest.fixture(scope="module")
def analysis() -> PrintAnalysis:
    return analyze_file(P2S)


def test_a_document_of_another_kind_is_refused_by_name(analysis: PrintAnalysis) -> None:
    for doc in ([], "text", {**analysis.to_json(), "format": "other/1"}):
        with pytest.raises(ValueError, match=f"^not a {FORMAT} document$"):
            PrintAnalysis.from_json(doc)  # type: ignore[arg-type]


def test_a_malformed_document_says_so(analysis: PrintAnalysis) -> None:
    broken = {**analysis.to_json(), "filaments": [{"no_such_field": 1}]}
    with pytest.raises(ValueError, match=f"^malformed {FORMAT} document: "):
        PrintAnalysis.from_json(broken)
    infinite = json.loads(json.dumps(analysis.to_json()))
    infinite["layers"][0] = {"0": float("inf")}
    with pytest.raises(ValueError, match=r"^non-finite figure in a stored analysis$"):
        PrintAnalysis.from_json(infinite)


def test_a_document_without_its_size_reads_as_zero_bytes(analysis: PrintAnalysis) -> None:
    doc = analysis.to_json()
    del doc["gcode_bytes"]
    assert PrintAnalysis.from_json(doc).gcode_bytes == 0


def test_layer_numbers_out_of_range(analysis: PrintAnalysis) -> None:
    assert analysis.layer_at_percent(0, 100) == {0: -3.0}  # the prelude has marks of its own (layer 0)
    assert analysis.layer_at_percent(0, 4) == {0: -3.0}
    last = analysis.layer_count
    for n in (-1, last + 1):
        with pytest.raises(IndexError, match=f"^layer {n} is outside 0..{last}$"):
            analysis.layer_at_percent(n, 50)
    with pytest.raises(IndexError, match=r"^layer -1 is negative$"):
        analysis.used_through(-1)


def test_used_through_adds_the_prelude_and_every_layer_up_to_n() -> None:
    made = PrintAnalysis.from_json(analyze_file(P2S).to_json())  # built here: its running sums are built now
    running: dict[int, float] = {}
    for n in range(made.layer_count + 1):
        for k, v in (made.prelude() if n == 0 else made.layer(n)).items():
            running[k] = running.get(k, 0.0) + v
        assert made.used_through(n) == pytest.approx(running), n
    assert made.totals() == pytest.approx(running)
    assert made.used_through(made.layer_count + 5) == pytest.approx(running)  # past the end: everything
