"""The mutation bench's own rules: the sample it measures and the example cap it puts on property tests."""

from __future__ import annotations

from hypothesis import settings

from bench.mutation.fast import EXAMPLES, _capped
from bench.mutation.run import module_of, sample


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
