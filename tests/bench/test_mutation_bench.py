"""The mutation bench's own rules: the sample it measures, the named mutants it runs and the example cap it
puts on property tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import settings

from bench.mutation.fast import EXAMPLES, _capped
from bench.mutation.run import module_of, names_known, sample


def test_the_sample_is_every_kth_name_from_the_first() -> None:
    names = [f"m{i:02d}" for i in range(10)]
    assert sample(names, 4) == ["m00", "m04", "m08"]
    assert sample(names, 1) == names


def test_property_tests_run_few_examples_and_no_deadline_under_mutation() -> None:
    capped = _capped(settings(max_examples=300, deadline=200))
    assert capped.max_examples == EXAMPLES and capped.deadline is None
    assert _capped(settings(max_examples=2)).max_examples == 2  # never more than the test asked for


def test_a_packages_own_mutants_count_under_its_init() -> None:
    assert module_of("server.analysis.x__analyze__mutmut_25") == "server/analysis/__init__.py"
    assert module_of("server.billing.outbox.x\u01c1Outbox\u01c1run__mutmut_28") == "server/billing/outbox.py"


def test_named_mutants_must_exist(tmp_path: Path) -> None:
    meta = tmp_path / "mutants" / "server" / "billing" / "outbox.py.meta"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"exit_code_by_key": {"server.billing.outbox.x_f__mutmut_1": None,
                                                     "server.billing.outbox.x_f__mutmut_2": None}}))
    assert names_known(tmp_path, ["server.billing.outbox.x_f__mutmut_2"]) == ["server.billing.outbox.x_f__mutmut_2"]
    with pytest.raises(SystemExit, match=r"no such mutant: server\.billing\.outbox\.x_f__mutmut_3 "):
        names_known(tmp_path, ["server.billing.outbox.x_f__mutmut_1", "server.billing.outbox.x_f__mutmut_3"])
