#!/usr/bin/env python
"""Seconds to score HumanEval's canonical solutions with the isolated function checker, against the in-process
scorer it replaced, side by side, per problem; and (`--suite tasks`) the example task folders' checks through
`sica-pytest` (isolated, canaries, signed report) against their `python3 -m pytest` checks of commit 57d1bac.

* today's scorer (in-process): HumanEval's scorer as of commit 57d1bac, its source read with `git show
  57d1bac:src/sica/benchmarks/humaneval.py` and loaded as a module: one sandboxed `python3 run_tests.py TREE` that
  imports `solution.py` and runs the dataset's `check` on it in the same process (which is what let a solution
  forge its verdict);
* isolated: `sica.benchmarks.humaneval` now: the trusted checker gets the tests and a nonce on standard input,
  makes itself non-dumpable, and calls the solution in a nested sandbox of its own across a plain-data boundary.

Both run in the real bwrap sandbox (`open_sandbox("bwrap")`) on a fresh tree holding the problem's prompt and
canonical solution. Each problem is scored `--repeats` times (3) by each scorer, the two alternating in ABBA order
after one warm-up of each; a cell is the median of its repeats. Printed: per problem, the median seconds of each,
their ratio (isolated / in-process) and the score each gave (in-process scores 0 where the test uses the prompt's
helpers or the function's name: HumanEval/32, 33, 38, 50); then the median over problems and the totals, with the
1-minute load average before and after. It exits 0 (2 if it cannot run) and takes about a minute for the default
20 problems:

    .venv/bin/python bench/scoring_isolation.py                     # problems 0-19
    .venv/bin/python bench/scoring_isolation.py --problems 0 32 33 87 --repeats 5
    .venv/bin/python bench/scoring_isolation.py --count 164 --repeats 1 --json out.json
    .venv/bin/python bench/scoring_isolation.py --suite tasks       # examples/tasks, old checks vs sica-pytest

Task folders are scored on their untouched starting trees (the same tests run either way; what is timed is the
check, not the solution), both through today's harness: only `check.sh` differs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uv

from sica.benchmarks import BenchmarkContext, BenchmarkError, open_benchmark
from sica.benchmarks.base import Problem
from sica.benchmarks.humaneval import HumanEvalBenchmark, install_data
from sica.config import load_settings
from sica.sandbox import Sandbox, SandboxError, open_sandbox

OLD_COMMIT = "57d1bac"
OLD_SOURCE = "src/sica/benchmarks/humaneval.py"
CACHE = Path.home() / ".cache/sica/benchmarks"
REPO = Path(__file__).resolve().parents[1]


def in_process_scorer() -> types.ModuleType:
    """HumanEval's module as of OLD_COMMIT, loaded under another name (its `_problem` builds today's scorer)."""
    source = subprocess.run(["git", "show", f"{OLD_COMMIT}:{OLD_SOURCE}"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout
    module = types.ModuleType("humaneval_in_process")
    exec(compile(source, f"{OLD_COMMIT}:{OLD_SOURCE}", "exec"), module.__dict__)
    return module


def timed_score(sandbox: Sandbox, problem: Problem, solution: str | None) -> tuple[float, float]:
    """Seconds to score `solution` (None: the starting tree as laid out) for `problem` on a fresh tree, and the
    score."""
    with tempfile.TemporaryDirectory(prefix="sica-bench-scoring-") as folder:
        tree = Path(folder)
        tree.chmod(0o755)
        problem.lay_out(tree)
        if solution is not None:
            (tree / "solution.py").write_text(solution, encoding="utf-8")
        assert problem.score is not None
        started = time.perf_counter()
        score = problem.score(sandbox, tree, None)
        return time.perf_counter() - started, score.value


def measure(sandbox: Sandbox, pairs: list[tuple[str, Problem, Problem, str | None]], repeats: int,
            on_row: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    rows = []
    for problem_id, old, new, solution in pairs:
        timed_score(sandbox, old, solution)
        timed_score(sandbox, new, solution)
        seconds: dict[str, list[float]] = {"in_process": [], "isolated": []}
        scores: dict[str, float] = {}
        for repeat in range(repeats):
            order = [("in_process", old), ("isolated", new)]
            for name, problem in order if repeat % 2 == 0 else order[::-1]:
                took, scores[name] = timed_score(sandbox, problem, solution)
                seconds[name].append(took)
        row = {"problem": problem_id, **{f"{name}_s": statistics.median(s) for name, s in seconds.items()},
               **{f"{name}_score": value for name, value in scores.items()}, "samples": seconds}
        row["ratio"] = row["isolated_s"] / row["in_process_s"]
        on_row(row)
        rows.append(row)
    return rows


def humaneval_pairs(args: argparse.Namespace) -> list[tuple[str, Problem, Problem, str | None]]:
    """(problem id, today's in-process problem, the isolated one, its canonical solution) per chosen problem."""
    benchmark = HumanEvalBenchmark(install_data(CACHE, uv.find_uv_bin()))
    old_module = in_process_scorer()
    rows_data = benchmark.rows()
    numbers = args.problems if args.problems else list(range(min(args.count, len(rows_data))))
    new_problems = benchmark.problems()
    return [(new_problems[n].id, old_module._problem(rows_data[n]), new_problems[n],
             rows_data[n]["prompt"] + rows_data[n]["canonical_solution"]) for n in numbers]


def task_pairs(scratch: Path) -> list[tuple[str, Problem, Problem, str | None]]:
    """(task, the task folder with its check of OLD_COMMIT, with today's check, None) per example task folder."""
    old_root = scratch / "old-tasks"
    old_root.mkdir()
    archive = subprocess.run(["git", "archive", OLD_COMMIT, "examples/tasks"], cwd=REPO, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(old_root), "--strip-components=2"], input=archive, check=True)
    settings = load_settings(None, {})
    context = BenchmarkContext.from_settings(settings.benchmarks, settings.solve.envs_dir, uv.find_uv_bin())
    old = open_benchmark(f"taskdir:{old_root}", context)
    new = open_benchmark(f"taskdir:{REPO / 'examples' / 'tasks'}", context)
    return [(n.id.rsplit("/", 1)[-1], o, n, None) for o, n in zip(old, new, strict=True)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=("humaneval", "tasks"), default="humaneval",
                        help="HumanEval's function checker (default) or the example task folders' checks")
    parser.add_argument("--count", type=int, default=20, help="score problems 0 .. COUNT-1 (default 20)")
    parser.add_argument("--problems", type=int, nargs="+", help="score these problem numbers instead")
    parser.add_argument("--repeats", type=int, default=3, help="measured scorings per problem and scorer (3)")
    parser.add_argument("--json", type=Path, help="also write every figure and sample here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sica-bench-tasks-") as scratch:
        try:
            sandbox = open_sandbox("bwrap")
            pairs = humaneval_pairs(args) if args.suite == "humaneval" else task_pairs(Path(scratch))
        except (SandboxError, BenchmarkError, subprocess.CalledProcessError, OSError) as error:
            print(f"cannot run: {error}", file=sys.stderr)
            return 2
        return report(sandbox, pairs, args)


def report(sandbox: Sandbox, pairs: list[tuple[str, Problem, Problem, str | None]], args: argparse.Namespace) -> int:
    """Measure `pairs` and print them side by side, with medians, totals and the load average."""
    load_before = os.getloadavg()[0]
    what = "HumanEval canonical solutions" if args.suite == "humaneval" else "example task folders, untouched trees"
    print(f"{what}, bwrap sandbox, {args.repeats} repeats each (ABBA), median seconds")
    print(f"{'problem':<14} {'in-process s':>12} {'isolated s':>11} {'ratio':>6}   {'scores (in-process, isolated)'}")

    def on_row(row: dict[str, Any]) -> None:
        print(f"{row['problem']:<14} {row['in_process_s']:>12.3f} {row['isolated_s']:>11.3f} {row['ratio']:>6.2f}"
              f"   {row['in_process_score']:g}, {row['isolated_score']:g}", flush=True)

    rows = measure(sandbox, pairs, args.repeats, on_row)
    total_old, total_new = sum(r["in_process_s"] for r in rows), sum(r["isolated_s"] for r in rows)
    median_old = statistics.median(r["in_process_s"] for r in rows)
    median_new = statistics.median(r["isolated_s"] for r in rows)
    print(f"{'median':<14} {median_old:>12.3f} {median_new:>11.3f} {median_new / median_old:>6.2f}")
    print(f"{'total':<14} {total_old:>12.3f} {total_new:>11.3f} {total_new / total_old:>6.2f}")
    solved = {name: sum(r[f"{name}_score"] == 1.0 for r in rows) for name in ("in_process", "isolated")}
    print(f"solved: in-process {solved['in_process']}/{len(rows)}, isolated {solved['isolated']}/{len(rows)}; "
          f"load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "repeats": args.repeats}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
