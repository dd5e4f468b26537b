"""`taskdir:PATH`: a folder of task folders (DESIGN.md's format): `task.md` (the statement), `build.sh DEST`
(lays out the starting tree; run by the harness, outside the sandbox, from the task folder) and
`check.sh WORKTREE [ANSWER]` (run sandboxed from a read-only copy of the task folder on a copy of the final tree;
exit 0 iff solved; an optional last line `score: X`). Nothing but task.md is ever shown to the agent."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from sica.benchmarks.base import (BenchmarkError, Problem, Score, fingerprint, output_tail, run_checks,
                                 score_from_output)
from sica.sandbox import Sandbox


class TaskFolderError(BenchmarkError):
    """A task folder that is not in the format; one line."""


def task_problem(folder: Path, benchmark: str, tools: Path | None = None) -> Problem:
    """One task folder as a problem; `tools` is the bin folder of the environment checks run with."""
    for name in ("task.md", "build.sh", "check.sh"):
        if not (folder / name).is_file():
            raise TaskFolderError(f"{folder} is not a task folder: it has no {name} (needs task.md, build.sh, "
                                  "check.sh)")

    def lay_out(dest: Path) -> None:
        done = subprocess.run(["bash", "build.sh", str(dest)], cwd=folder, capture_output=True, text=True)
        if done.returncode != 0:
            raise TaskFolderError(f"{folder}/build.sh failed (exit {done.returncode}): "
                                  f"{output_tail(done.stderr)}")

    def score(sandbox: Sandbox, final_tree: Path, answer: str | None) -> Score:
        with tempfile.TemporaryDirectory(prefix="sica-task-") as scratch:
            hidden = Path(scratch) / folder.name
            shutil.copytree(folder, hidden, symlinks=True)
            Path(scratch).chmod(0o755)
            arguments = [answer] if answer else []
            result = run_checks(sandbox, final_tree, hidden,
                                lambda tree: ("bash", str(hidden / "check.sh"), str(tree), *arguments), tools=tools)
        return score_from_output(result)

    statement = (folder / "task.md").read_text(encoding="utf-8")
    return Problem(f"{benchmark}/{folder.name}", benchmark, statement, lay_out, score,
                   fingerprint=fingerprint(folder))


class TaskDirBenchmark:
    """Every task folder directly under `root`, sorted by name."""

    def __init__(self, root: Path, tools: Path | None = None) -> None:
        if not root.is_dir():
            raise TaskFolderError(f"{root} is not a folder of task folders")
        self.root = root
        self.name = f"taskdir:{root}"
        self._tools = tools

    def problems(self) -> list[Problem]:
        folders = sorted(p for p in self.root.iterdir() if p.is_dir() and (p / "task.md").exists())
        return [task_problem(folder, self.name, self._tools) for folder in folders]

