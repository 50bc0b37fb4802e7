"""The ``make_stack`` fixture (see e2e_stack.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_stack import StackFactory, stack_factory


@pytest.fixture
def make_stack(tmp_path: Path) -> StackFactory:
    return stack_factory(tmp_path)
