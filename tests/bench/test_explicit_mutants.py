"""The five bugs issue 16 found no test noticed, kept as explicit mutants (bench/mutation/explicit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.mutation.explicit import MUTANTS, killed

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_each_mutant_still_applies_to_the_code(mutant, tmp_path: Path) -> None:
    target = tmp_path / mutant.path
    target.parent.mkdir(parents=True)
    target.write_text((ROOT / mutant.path).read_text(encoding="utf-8"), encoding="utf-8")
    mutant.apply(tmp_path)
    assert target.read_text(encoding="utf-8") != (ROOT / mutant.path).read_text(encoding="utf-8")
    assert all((ROOT / test).exists() for test in mutant.tests)


@pytest.mark.slow
@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_each_mutant_is_killed_by_its_tests(mutant) -> None:
    was_killed, last = killed(mutant, ROOT)
    assert was_killed, f"{mutant.name} survived {mutant.tests}: {last}"
