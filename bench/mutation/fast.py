"""pytest plugin the mutation bench loads into every test run (``-p bench.mutation.fast``).

Each mutant reruns the tests that reach the mutated function; a property test with 300 examples or
a 35-step model run costs seconds each time, thousands of times over. Under mutation every
hypothesis test therefore runs at most ``EXAMPLES`` examples (no deadline: mutmut's trampolines make
every call slower). The ordinary test runs are untouched: this module is only loaded by the bench."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings

EXAMPLES = 5


def _capped(current: settings | None) -> settings:
    base = current or settings.default
    return settings(base, max_examples=min(base.max_examples, EXAMPLES), deadline=None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        function: Any = getattr(item, "obj", None)
        if hasattr(function, "hypothesis"):  # @given: the wrapper reads this attribute when it runs
            target = getattr(function, "__func__", function)
            target._hypothesis_internal_use_settings = _capped(target._hypothesis_internal_use_settings)
        case: Any = getattr(item, "cls", None)
        if case is not None and isinstance(getattr(case, "settings", None), settings):  # stateful TestCase
            case.settings = _capped(case.settings)
