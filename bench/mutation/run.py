"""Mutation testing of the billing core with mutmut, in a scratch copy of the repository.

``python -m bench.mutation`` copies the repository (what git tracks, plus uncommitted edits) into a
temporary folder, writes mutmut's settings there, runs ``mutmut run --max-children 1`` (one worker by
default: the machine is shared; ``--workers N`` for more) and prints killed / survived per module.
Nothing is written into the repository. The whole scope is ~4,000 mutants, so ``--every K`` measures a
deterministic sample (every K-th mutant sorted by name), and ``--keep`` + ``--again FOLDER`` rerun a kept
run's survivors after new tests. Property tests run at most a few examples under mutation (``bench/mutation/fast.py``).
``--mutants NAME ...`` runs only the named mutants (say, a sample's survivors after new tests).
``--explicit`` instead applies the hand-written mutants of ``bench/mutation/explicit.py``
one by one and says which tests kill each (every one must be killed).

Why mutmut rather than cosmic-ray: mutmut 3 first records which tests reach each function and then
runs only those tests against each of that function's mutants (in forked workers, no re-import),
so a few hundred mutants of the core take minutes; cosmic-ray runs the whole test command for every
mutant (a fresh pytest of the test folders, tens of seconds each) and rewrites the source files in
place while it does. Both install from PyPI and run offline.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from bench.mutation.fast import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
# What is mutated, and the test folders that must kill it.
MODULES = [
    "server/analysis/*",
    "server/billing/rules.py",
    "server/billing/ledger.py",
    "server/billing/settlement.py",
    "server/billing/outbox.py",
]
TESTS = ["tests/analysis", "tests/billing"]
# Tests that start other processes or browsers would not see the mutant (it lives in the forked worker).
# bench.mutation.fast caps every hypothesis test at a few examples, so one mutant costs about a second.
DESELECT = ["-m", "not slow and not browser", "-p", "no:cacheprovider", "-q", "-p", "bench.mutation.fast",
            "--deselect", "tests/billing/test_outbox_sigkill.py"]
GOAL = 0.90


def copy_repository(target: Path) -> None:
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.splitlines()
    for name in tracked:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def configure(target: Path, modules: list[str], tests: list[str]) -> None:
    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"

    with (target / "pyproject.toml").open("a", encoding="utf-8") as settings:
        settings.write(
            "\n[tool.mutmut]\n"
            'source_paths = ["server"]\n'
            f"only_mutate = {toml_list(modules)}\n"
            f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
            f"pytest_add_cli_args = {toml_list(DESELECT)}\n"
            'also_copy = ["bench", "templates", "static", "manifest.webmanifest", "README.md", "docs"]\n'
        )


def results(work: Path) -> dict[str, str]:
    """Mutant name -> status, from ``mutmut results --all true``."""
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=work,
                         capture_output=True, text=True, check=False).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name and status:
            found[name] = status
    return found


def module_of(mutant: str) -> str:
    """``server.billing.rules.x_filament_grams__mutmut_3`` -> ``server/billing/rules.py`` (a package's
    own functions -> its ``__init__.py``)."""
    dotted = mutant.split(".x_")[0].split(".x\u01c1")[0]
    path = dotted.replace(".", "/")
    return f"{path}/__init__.py" if (ROOT / path).is_dir() else f"{path}.py"


# mutmut's words -> the table's columns; a timeout (the mutant made a test hang) counts as killed.
COLUMNS = {"killed": "killed", "timeout": "killed", "survived": "survived", "no tests": "no tests"}


def table(statuses: dict[str, str]) -> tuple[str, float]:
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for name, status in statuses.items():
        per[module_of(name)][COLUMNS.get(status, "not run")] += 1
    lines = [f"{'module':38} {'mutants':>7} {'killed':>7} {'survived':>8} {'no tests':>8} {'not run':>7} "
             f"{'killed %':>8}"]
    total: Counter[str] = Counter()
    for module in sorted(per):
        total.update(per[module])
        lines.append(_row(module, per[module]))
    lines.append(_row("all", total))
    decided = total["killed"] + total["survived"] + total["no tests"]
    return "\n".join(lines), (total["killed"] / decided if decided else 0.0)


def _row(name: str, counts: Counter[str]) -> str:
    """killed % is of the mutants that ran or had no test at all (a mutant no test reaches survives)."""
    decided = counts["killed"] + counts["survived"] + counts["no tests"]
    share = f"{100 * counts['killed'] / decided:.1f}" if decided else "-"
    return (f"{name:38} {sum(counts.values()):7d} {counts['killed']:7d} {counts['survived']:8d} "
            f"{counts['no tests']:8d} {counts['not run']:7d} {share:>8}")


def mutant_names(work: Path) -> list[str]:
    """Every mutant mutmut generated, sorted by name (from its ``mutants/**/*.meta`` files)."""
    names: list[str] = []
    for meta in (work / "mutants").rglob("*.meta"):
        names.extend(json.loads(meta.read_text(encoding="utf-8")).get("exit_code_by_key", {}))
    return sorted(names)


def names_known(work: Path, names: list[str]) -> list[str]:
    """``names`` as the generated mutants spell them; a name no mutant has is an error (a typo, or the code
    moved on and mutmut numbers that function's mutants differently now)."""
    known = set(mutant_names(work))
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"no such mutant: {', '.join(unknown)} (`mutmut show` in a --keep folder lists them)")
    return list(names)


def sample(names: list[str], every: int) -> list[str]:
    """The deterministic sample: the 1st, (k+1)th, (2k+1)th ... of the mutants sorted by name."""
    return names[::every]


def _mutmut(work: Path, args: list[str], log: Path, minutes: float | None, workers: int = 1) -> None:
    env = {**os.environ, "PYTHONPATH": str(work)}
    with log.open("a", encoding="utf-8") as sink:  # its progress line redraws itself: kept out of the output
        mutmut = subprocess.Popen([sys.executable, "-m", "mutmut", "run", "--max-children", str(workers), *args],
                                  cwd=work,
                                  env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            mutmut.wait(timeout=minutes * 60 if minutes else None)
        except subprocess.TimeoutExpired:  # time-boxed: what ran is reported, the rest as "not run"
            os.killpg(mutmut.pid, signal.SIGTERM)  # mutmut and the worker it forked, nothing else
            mutmut.wait()


def _copy_tests(work: Path) -> None:
    """The repository's tests as they are now, into a kept work folder and mutmut's copy of it."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "tests"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    for target in (work, work / "mutants"):
        for name in names:
            if (ROOT / name).is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, target / name)


def run_mutmut(modules: list[str], tests: list[str], keep: bool, minutes: float | None, every: int = 1,
               again: Path | None = None, names: list[str] | None = None, workers: int = 1) -> int:
    """Mutate and test in a fresh scratch folder; or, with ``again`` (a folder kept by an earlier run),
    bring in today's tests and rerun only that run's survivors (mutmut records which tests reach what for
    the new tests alone; killed mutants stay killed as long as tests are only added or made stricter);
    or, with ``names``, run only the named mutants in a fresh folder (e.g. an earlier run's survivors)."""
    work = again or Path(tempfile.mkdtemp(prefix="layerwise-mutation-"))
    keep = keep or again is not None
    try:
        started = time.monotonic()
        log = work / "mutmut.log"
        if again:
            _copy_tests(work)
            chosen = json.loads((work / "sample.json").read_text(encoding="utf-8"))
            before = results(work)
            survived = [n for n in chosen if before.get(n.replace("__init__.", "")) == "survived"]
            if survived:  # (no names at all would mean every mutant)
                _mutmut(work, survived, log, minutes, workers)
        else:
            copy_repository(work)
            configure(work, modules, tests)
            # A name no mutant has: mutmut generates every mutant and records which tests reach what, then stops.
            _mutmut(work, ["no-such-mutant"], log, None)
            chosen = names_known(work, names) if names else sample(mutant_names(work), every)
            (work / "sample.json").write_text(json.dumps(chosen), encoding="utf-8")
            _mutmut(work, chosen if every > 1 or names else [], log, minutes, workers)
        # mutmut reports a package's own mutants without the ``__init__`` its files name them by
        found = results(work)
        statuses = {name: found.get(name.replace("__init__.", ""), "not checked") for name in chosen}
        text, score = table(statuses)
        print(f"\nmutmut over {', '.join(modules)}\ntests: {' '.join(tests)} (not slow, not browser, "
              f"hypothesis at most {EXAMPLES} examples)")
        every_name = mutant_names(work)
        if names:
            print(f"named: {len(chosen)} mutants of {len(every_name)}")
        elif len(chosen) < len(every_name):
            print(f"sample: every k-th mutant sorted by name, from the first ({len(chosen)} of {len(every_name)})")
        if again:
            print("rerun: the survivors of the run kept in this folder, against today's tests")
        print(f"{time.monotonic() - started:.0f} s, {workers} worker{'s' if workers > 1 else ''}\n")
        print(text)
        survivors = sorted(name for name, status in statuses.items() if status == "survived")
        if survivors:
            print("\nsurvived (`mutmut show NAME` in the work folder shows the change):")
            for name in survivors:
                print(f"  {name}")
        print(f"\nkilled {100 * score:.1f} % (goal {100 * GOAL:.0f} %)")
        return 0 if score >= GOAL else 1
    finally:
        if keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mutation", description=__doc__.splitlines()[0])
    parser.add_argument("--explicit", action="store_true", help="apply the hand-written mutants of explicit.py")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (to `mutmut show` survivors)")
    parser.add_argument("--minutes", type=float, help="stop mutmut after this long and report what ran")
    parser.add_argument("--modules", nargs="+", default=MODULES, help="globs of what to mutate")
    parser.add_argument("--tests", nargs="+", default=TESTS, help="the test folders or files that run")
    parser.add_argument("--every", type=int, default=1, help="mutate a sample: every k-th mutant sorted by name")
    parser.add_argument("--again", type=Path, help="a folder kept by --keep: rerun its survivors with today's tests")
    parser.add_argument("--mutants", nargs="+", metavar="NAME", help="run only these mutants (mutmut's names)")
    parser.add_argument("--workers", type=int, default=1, help="mutants tested at once (mutmut's --max-children)")
    args = parser.parse_args(argv)
    if args.explicit:
        from bench.mutation.explicit import run_explicit

        return run_explicit()
    return run_mutmut(args.modules, args.tests, args.keep, args.minutes, args.every, args.again, args.mutants,
                      args.workers)
