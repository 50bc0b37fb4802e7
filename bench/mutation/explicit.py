"""Hand-written mutants: real one-line bugs an audit found no test noticed (issue 16). Each must be
killed by the tests named beside it; ``python -m bench.mutation --explicit`` applies them one at a
time in a scratch copy of the repository and runs those tests, and tests/bench/test_explicit_mutants.py
checks the list still applies to the code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # the file, from the repository root
    original: str  # text that must occur in it (every occurrence is replaced)
    mutated: str
    tests: tuple[str, ...]  # what must fail with the mutant applied

    def apply(self, root: Path) -> None:
        source = root / self.path
        text = source.read_text(encoding="utf-8")
        if self.original not in text:
            raise LookupError(f"{self.name}: {self.path} no longer contains {self.original!r}")
        source.write_text(text.replace(self.original, self.mutated), encoding="utf-8")


MUTANTS = (
    Mutant("grams computed without the filament's diameter", "server/billing/rules.py",
           "return grams(mm, info.diameter or DEFAULT_DIAMETER, info.density)",
           "return grams(mm, DEFAULT_DIAMETER, info.density)",
           ("tests/billing/test_materials.py",)),
    Mutant("the outbox expects PLA's weight, not the spool's filament's", "server/billing/outbox.py",
           "grams(mm, filament.diameter, filament.density)", "grams(mm, 1.75, 1.24)",
           ("tests/billing/test_materials.py",)),
    Mutant("G92 E<n> read as G92 E0", "server/analysis/scanner.py",
           "                if e is not None:\n                    self._e = e\n",
           "                if e is not None:\n                    self._e = 0.0\n",
           ("tests/analysis/test_reference_oracle.py",)),
    Mutant(";VG1 counted inside a skip block", "server/analysis/scanner.py",
           "            e = _word(words, b\"E\")\n            if e and not self._skip:\n"
           "                self._add(e)\n\n    def _comment",
           "            e = _word(words, b\"E\")\n            if e:\n                self._add(e)\n\n    def _comment",
           ("tests/analysis/test_reference_oracle.py",)),
    Mutant("SETTLE_GRACE = 0", "server/billing/outbox.py",
           "SETTLE_GRACE = settle_grace(10.0)", "SETTLE_GRACE = 0.0",
           ("tests/billing/test_outbox_grace.py",)),
)


def killed(mutant: Mutant, root: Path) -> tuple[bool, str]:
    """Apply ``mutant`` to a copy of ``root`` and run its tests there: (killed, pytest's last line)."""
    from bench.mutation.run import copy_repository

    work = Path(tempfile.mkdtemp(prefix="layerwise-mutant-"))
    try:
        copy_repository(work)
        mutant.apply(work)
        env = {**os.environ, "PYTHONPATH": str(work)}
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *mutant.tests],
                             cwd=work, env=env, capture_output=True, text=True, check=False)
        last = (run.stdout.strip().splitlines() or [""])[-1]
        return run.returncode == 1, last  # 1: tests failed (2-5 would be errors, not a kill)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_explicit(root: Path | None = None) -> int:
    root = root or Path(__file__).resolve().parents[2]
    survivors = 0
    for mutant in MUTANTS:
        was_killed, last = killed(mutant, root)
        survivors += not was_killed
        print(f"{'killed  ' if was_killed else 'SURVIVED'} {mutant.name} ({mutant.path}): {last}")
    print(f"{len(MUTANTS) - survivors} of {len(MUTANTS)} explicit mutants killed")
    return 1 if survivors else 0
