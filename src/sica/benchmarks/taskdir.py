"""`taskdir:PATH`: a folder of task folders, one a task: `task.md` (the statement), `build.sh DEST`
(lays out the starting tree; run by the harness, outside the sandbox, from the task folder) and
`check.sh WORKTREE [ANSWER]` (run sandboxed from a read-only copy of the task folder on a copy of the final tree;
exit 0 iff solved; an optional last line `score: X`). Nothing but task.md is ever shown to the agent.

A check runs the task's tests with `sica-pytest`, a command the harness puts first on the check's PATH: the
trusted runner (`pytest_report.py --summary`) on test files of the task folder's copy, isolated from the tree,
with canary tests, its secrets on the check's standard input. When it ran, its signed report decides too: the
score is at most what the report allows, 0 when it did not finish, and a forged report is tampering."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from sica.benchmarks.base import BenchmarkError, Problem, Score, fingerprint, output_tail, run_checks, score_from_output
from sica.benchmarks.canaries import RunnerSecrets, Tampered, read_runner_output
from sica.benchmarks.pytest_report import summary_verdict
from sica.sandbox import Sandbox, SandboxResult

RUNNER = Path(__file__).with_name("pytest_report.py")
#: Canary tests in a `sica-pytest` run (copies of the scored tests first).
CANARIES = 3
SICA_PYTEST = """#!/bin/sh
# The harness's trusted pytest runner for task checks: sica-pytest --tree TREE [--source DIR] [--required TESTS]...
# TESTS... (test files of the task folder; see the README's section on task folders whose check cannot be fooled).
exec {python} -I -B {runner} --summary "$@"
"""


class TaskFolderError(BenchmarkError):
    """A task folder that is not in the format; one line."""


def task_problem(folder: Path, benchmark: str, tools: Path | None = None) -> Problem:
    """One task folder as a problem; `tools` is the bin folder of the environment checks run with."""
    for name in ("task.md", "build.sh", "check.sh"):
        if not (folder / name).is_file():
            raise TaskFolderError(
                f"{folder} is not a task folder: it has no {name} (needs task.md, build.sh, check.sh)"
            )

    def lay_out(dest: Path) -> None:
        done = subprocess.run(["bash", "build.sh", str(dest)], cwd=folder, capture_output=True, text=True)
        if done.returncode != 0:
            raise TaskFolderError(f"{folder}/build.sh failed (exit {done.returncode}): {output_tail(done.stderr)}")

    def score(sandbox: Sandbox, final_tree: Path, answer: str | None) -> Score:
        given = RunnerSecrets.new(CANARIES)
        with (
            tempfile.TemporaryDirectory(prefix="sica-task-") as scratch,
            tempfile.TemporaryDirectory(prefix="sica-task-bin-") as helpers,
        ):
            hidden = Path(scratch) / folder.name
            shutil.copytree(folder, hidden, symlinks=True)
            Path(scratch).chmod(0o755)
            _write_sica_pytest(Path(helpers), tools)
            arguments = [answer] if answer else []
            result = run_checks(
                sandbox,
                final_tree,
                hidden,
                lambda tree: ("bash", str(hidden / "check.sh"), str(tree), *arguments),
                tools=tools,
                stdin=given.stdin(),
                helpers=Path(helpers),
            )
        return check_score(result, given)

    statement = (folder / "task.md").read_text(encoding="utf-8")
    return Problem(
        f"{benchmark}/{folder.name}", benchmark, statement, lay_out, score, fingerprint=fingerprint(folder, RUNNER)
    )


def _write_sica_pytest(folder: Path, tools: Path | None) -> None:
    """The `sica-pytest` command in `folder`: the trusted runner, run by the checks' environment's Python."""
    runner = folder / RUNNER.name
    shutil.copy(RUNNER, runner)
    python = str(tools / "python") if tools else "python3"
    command = folder / "sica-pytest"
    command.write_text(
        SICA_PYTEST.format(python=shlex.quote(python), runner=shlex.quote(str(runner))), encoding="utf-8"
    )
    command.chmod(0o755)
    folder.chmod(0o755)


def check_score(result: SandboxResult, given: RunnerSecrets) -> Score:
    """A check's score: its own verdict (`score_from_output`), and when it ran `sica-pytest`, at most what the
    runner's verified report allows; 0 when the runner did not finish or ran without the secrets; tampered when
    the output holds what the trusted runner cannot have written."""
    try:
        output = read_runner_output(result.stdout, given)
    except Tampered as evidence:
        return Score.tampering(str(evidence))
    score = score_from_output(result)
    if output.started is None:
        return score
    if output.without_secrets:
        return Score(
            0.0,
            "sica-pytest ran without the harness's secrets (run it once per check, on the check's "
            f"standard input); {score.details}",
        )
    if output.report is None:
        return Score(0.0, f"sica-pytest did not finish its tests; {score.details}")
    value, summary = summary_verdict(output.started.get("expected") or {}, output.report)
    return Score(min(score.value, value), f"{summary}; {score.details}")


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
