"""`symbol_location`: find where a symbol used in real code is defined, after the symbol-location benchmark of the
SICA paper (Robeyns et al. 2025). Built from the sdists pinned in `PACKAGES`: usages whose definition the syntax
trees settle for certain (`symbols.py`) are drawn with a seeded generator, most of them resolved through
imports. The starting tree is the sdist's Python files; the statement names the usage's place, its line and the
symbol; the answer, `PATH:LINE:COL` of the name in the `def`/`class` statement, is scored by
`scorers/location_score.py` (which documents how answers are read).

Only the answer is scored, never the final tree: the sandboxed scorer gets the answer and the expected place on
standard input, on an empty tree, so no file the agent left (a link, a FIFO, a tree too deep to copy) is read,
copied or run, and the expected place is in no file a link could name."""

from __future__ import annotations

import dataclasses
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from sica.benchmarks.base import BenchmarkContext, Problem
from sica.benchmarks.generated import cached_rows, round_robin
from sica.benchmarks.scorers import location_score, script_problem
from sica.benchmarks.sdists import fetch_sdist
from sica.benchmarks.symbols import SourceIndex, Usage, python_files

NAME = "symbol_location"
#: The sdists problems come from, in the order their problems are interleaved.
PACKAGES: tuple[str, ...] = (
    "toolz==0.12.1",
    "attrs==23.2.0",
    "packaging==23.2",
    "pluggy==1.4.0",
    "click==8.1.7",
    "more-itertools==10.3.0",
    "itsdangerous==2.1.2",
    "idna==3.7",
)
#: Bump when a change of this code (or of `symbols.py`) changes the problems, so that cached sets are rebuilt
#: (changes of the constants below rebuild them by themselves).
GENERATOR = 1
#: Problems drawn from each package: this many resolved through imports, the rest within their own module.
PER_PACKAGE = 6
THROUGH_IMPORTS = 4


@dataclass(frozen=True)
class LocateTask:
    """One question: where is `symbol`, used at `usage` (`PATH:LINE:COL`, on `line`), defined (`definition`)?"""

    id: str
    requirement: str
    symbol: str
    usage: str
    line: str
    definition: str


def locate_tasks(context: BenchmarkContext, packages: tuple[str, ...]) -> list[LocateTask]:
    """The tasks of `packages`, generated once and then read from the cache."""
    key = {"generator": GENERATOR, "packages": packages, "per_package": PER_PACKAGE, "through_imports": THROUGH_IMPORTS}
    rows = cached_rows(context, NAME, key, lambda: [dataclasses.asdict(task) for task in generate(context, packages)])
    return [LocateTask(**row) for row in rows]


def generate(context: BenchmarkContext, packages: tuple[str, ...]) -> list[LocateTask]:
    """PER_PACKAGE tasks from each package (each its own seeded draw), the packages interleaved."""
    groups = []
    for requirement in packages:
        tree = fetch_sdist(requirement, context)
        context.on_progress(f"resolving symbols in {requirement}")
        drawn = []
        for usage in draw(SourceIndex(tree).usages(), random.Random(f"{NAME}/{GENERATOR}/{requirement}")):
            place = usage.place
            line = (tree / place.path).read_text(encoding="utf-8").split("\n")[place.line - 1]
            drawn.append(
                LocateTask(
                    f"{NAME}/{requirement.replace('==', '-')}/{place}",
                    requirement,
                    usage.symbol,
                    str(place),
                    line,
                    str(usage.definition),
                )
            )
        groups.append(drawn)
    tasks = round_robin(groups)
    context.on_progress(f"{len(tasks)} problems")
    return tasks


def draw(usages: list[Usage], rng: random.Random) -> list[Usage]:
    """PER_PACKAGE usages of distinct definitions, in the order drawn: THROUGH_IMPORTS resolved through imports,
    the rest within their own module (either kind fills in when the other runs short)."""
    imported = [usage for usage in usages if usage.hops]
    local = [usage for usage in usages if not usage.hops]
    rng.shuffle(imported)
    rng.shuffle(local)
    chosen: list[Usage] = []
    for pool, wanted in ((imported, THROUGH_IMPORTS), (local, PER_PACKAGE), (imported, PER_PACKAGE)):
        for usage in pool:
            if len(chosen) >= wanted:
                break
            if all(usage.definition != other.definition for other in chosen):
                chosen.append(usage)
    return chosen


def problem(task: LocateTask, tree: Path) -> Problem:
    """The problem of one task; `tree` is its package's unpacked sdist, whose Python files are laid out."""

    def lay_out(dest: Path) -> None:
        for file in python_files(tree):
            copy = dest / file.relative_to(tree)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, copy)

    def scorer_input(final_tree: Path, answer: str | None) -> dict[str, str | None]:
        return {"expected": task.definition, "answer": answer}

    return script_problem(task.id, NAME, statement(task), lay_out, location_score, scorer_input, (task.definition,))


def statement(task: LocateTask) -> str:
    name, _, version = task.requirement.partition("==")
    return (
        f"The working directory holds the Python source of {name} {version}. At `{task.usage}` (PATH:LINE:COL; "
        f"lines and columns count from 1, columns in characters), this line uses `{task.symbol}`:\n\n"
        f"    {task.line.strip()}\n\n"
        f"Find where the `{task.symbol}` used there is defined: the `def` or `class` statement it refers to, "
        "following imports within the source tree. Submit as your answer its place as PATH:LINE:COL, where PATH "
        "is relative to the working directory, LINE is the line of the `def`/`class` statement and COL the "
        "column where the defined name starts (in `def merge(`, the `m`), e.g. `pkg/module.py:12:5`. Do not "
        "change any file."
    )


def open_symbol_location(context: BenchmarkContext, count: int | None) -> list[Problem]:
    """Every problem (the set is generated whole, once, so `count` changes nothing)."""
    trees = {requirement: fetch_sdist(requirement, context) for requirement in PACKAGES}
    return [problem(task, trees[task.requirement]) for task in locate_tasks(context, PACKAGES)]
