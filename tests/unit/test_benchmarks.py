"""Benchmarks through the real sandbox: a known-good solution scores 1.0, the untouched start 0 (or the
documented partial), and hidden files never enter the starting tree."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import uv

from sica.benchmarks import BenchmarkContext, BenchmarkError, open_benchmark
from sica.benchmarks.base import PARTIAL_CAP, score_from_output
from sica.benchmarks.environments import check_environment
from sica.benchmarks.humaneval import HumanEvalBenchmark, install_data
from sica.benchmarks.taskdir import TaskFolderError, task_problem
from sica.config import default_envs_dir
from sica.sandbox import SandboxResult

EXAMPLES = Path(__file__).parents[2] / "examples" / "tasks"
CACHE = Path.home() / ".cache/sica/benchmarks"


@pytest.fixture(scope="module")
def humaneval_rows():
    return HumanEvalBenchmark(install_data(CACHE, uv.find_uv_bin())).rows()


def _fix_mean(tree: Path) -> None:
    module = tree / "textstats" / "__init__.py"
    module.write_text(module.read_text().replace("(len(values) - 1)", "len(values)"))


def _fix_mean_wrongly(tree: Path) -> None:
    module = tree / "textstats" / "__init__.py"
    module.write_text(module.read_text().replace("sum(values) / len(values)", "sum(values)"))


def _add_word_count(tree: Path, body: str = "len(text.split())") -> None:
    module = tree / "textstats" / "__init__.py"
    module.write_text(module.read_text() + f"\n\ndef word_count(text):\n    return {body}\n")


#: example task → (its solution: a change to the tree, and the answer), the start's score (0: an untouched tree
#: earns nothing, not even add-word-count's partial credit, which counts only the new feature's hidden tests)
EXAMPLE_SOLUTIONS = {"fix-mean": ((_fix_mean, None), 0.0), "add-word-count": ((_add_word_count, None), 0.0),
                     "find-config": ((lambda tree: None, "`./app/settings.py`"), 0.0)}


@pytest.fixture(scope="module")
def check_tools() -> Path:
    """The environment the harness builds for task folders' checks (pytest), never the agent's."""
    return check_environment(BenchmarkContext(CACHE, default_envs_dir(os.geteuid()), uv.find_uv_bin()))


@pytest.mark.parametrize("name", sorted(EXAMPLE_SOLUTIONS))
def test_example_task_folders_score_their_solution_and_not_the_start(tree, sandbox, check_tools, name):
    problem = task_problem(EXAMPLES / name, "taskdir", tools=check_tools)
    problem.lay_out(tree)
    laid_out = {p.name for p in tree.rglob("*")}
    assert not laid_out & {"task.md", "build.sh", "check.sh", "hidden", "test_word_count.py"}
    (solve, answer), start_score = EXAMPLE_SOLUTIONS[name]
    assert problem.score(sandbox, tree, None).value == start_score
    solve(tree)
    solved = problem.score(sandbox, tree, answer)
    assert solved.value == 1.0, solved.details


def test_partial_credit_from_check_sh(tree, sandbox, check_tools):
    problem = task_problem(EXAMPLES / "add-word-count", "taskdir", tools=check_tools)
    problem.lay_out(tree)
    _add_word_count(tree, body="len(text.split()) if text else 0")  # right; and one that miscounts blanks:
    assert problem.score(sandbox, tree, None).value == 1.0
    _add_word_count(tree, body="len(text.split()) if text.strip() else 1")
    partial = problem.score(sandbox, tree, None)
    assert partial.value == 0.5 and "1 of 2 scored tests pass, 1 of 1 required tests pass" in partial.details, (
        partial.details)
    _fix_mean_wrongly(tree)
    broken = problem.score(sandbox, tree, None)
    assert broken.value == 0.0 and "0 of 1 required tests pass" in broken.details, broken.details


def test_check_material_unreadable_by_others_is_made_readable(tree, sandbox, tmp_path):
    task = tmp_path / "task"
    task.mkdir()
    (task / "task.md").write_text("Nothing to do.")
    (task / "build.sh").write_text("true\n")
    (task / "expected.txt").write_text("ok\n")
    (task / "expected.txt").chmod(0o600)
    (task / "check.sh").write_text('grep -q ok "$(dirname "$0")/expected.txt"\n')
    assert task_problem(task, "taskdir").score(sandbox, tree, None).value == 1.0


def test_partial_credit_and_answers_reach_check_sh(tree, sandbox):
    task = tree / "task"
    task.mkdir()
    (task / "task.md").write_text("Name the capital of France.")
    (task / "build.sh").write_text("touch \"$1/notes.txt\"\n")
    (task / "check.sh").write_text(textwrap.dedent("""\
        if [ "$2" = "Paris" ]; then exit 0; fi
        if [ "$2" = "paris" ]; then echo "close"; echo "score: 0.5"; exit 1; fi
        exit 1
    """))
    problem = task_problem(task, "taskdir")
    start = tree / "start"
    start.mkdir()
    problem.lay_out(start)
    assert [problem.score(sandbox, start, answer).value for answer in ("Paris", "paris", "Lyon", None)] == [
        1.0, 0.5, 0.0, 0.0]


def test_malformed_task_folder_is_one_clear_line(tmp_path):
    (tmp_path / "task.md").write_text("x")
    with pytest.raises(TaskFolderError, match="has no build.sh"):
        task_problem(tmp_path, "taskdir")


def test_humaneval_has_all_164_problems_with_hidden_tests(humaneval_rows, tree):
    problems = HumanEvalBenchmark(install_data(CACHE, uv.find_uv_bin())).problems()
    assert len(problems) == 164 and problems[0].id == "humaneval/0"
    problems[0].lay_out(tree)
    laid_out = (tree / "solution.py").read_text()
    assert "def has_close_elements" in laid_out and "check(" not in laid_out


#: Results of many kinds cross the checker's boundary: bool, list, float, tuple (of int, float, str, None), dict,
#: a list of tuples, lists of lists as arguments; 32, 38 and 50's tests use the prompt's helpers, 33's its name.
HUMANEVAL_SAMPLE = [0, 1, 2, 8, 20, 21, 32, 33, 38, 50, 53, 87, 111, 112, 129, 136, 137, 163]


@pytest.mark.parametrize("index", HUMANEVAL_SAMPLE)
def test_humaneval_canonical_solutions_score_one_and_stubs_zero(humaneval_rows, tree, sandbox, index):
    row = humaneval_rows[index]
    problem = HumanEvalBenchmark(install_data(CACHE, uv.find_uv_bin())).problems()[index]
    problem.lay_out(tree)
    assert problem.score(sandbox, tree, None).value == 0.0
    (tree / "solution.py").write_text(row["prompt"] + row["canonical_solution"])
    result = problem.score(sandbox, tree, None)
    assert result.value == 1.0, result.details


def test_benchmark_names():
    context = BenchmarkContext(CACHE, default_envs_dir(os.geteuid()), uv.find_uv_bin())
    assert len(open_benchmark("humaneval:3", context)) == 3
    assert [p.id for p in open_benchmark(f"taskdir:{EXAMPLES}", context)] == [
        f"taskdir:{EXAMPLES.resolve()}/{name}" for name in ("add-word-count", "find-config", "fix-mean")]
    for bad, message in [("humaneval:0", "positive number"), ("taskdir:", "needs a folder"),
                         ("swebench", "unknown benchmark 'swebench'")]:
        with pytest.raises(BenchmarkError, match=message):
            open_benchmark(bad, context)


def test_a_check_that_did_not_exit_0_never_scores_1():
    """The code under test prints too: a `score: 1` from a failing or stopped check is not a solve."""

    def result(ending: str, code: int | None, stdout: str) -> SandboxResult:
        return SandboxResult(ending, code, None, 0.1, stdout, "")  # type: ignore[arg-type]

    assert score_from_output(result("exit", 0, "ok\n")).value == 1.0
    assert score_from_output(result("exit", 0, "score: 0.25\n")).value == 0.25
    assert score_from_output(result("exit", 1, "close\nscore: 0.5\n")).value == 0.5
    assert score_from_output(result("exit", 1, "score: 1\n")).value == PARTIAL_CAP
    assert score_from_output(result("exit", 1, "no\n")).value == 0.0
    assert score_from_output(result("timeout", None, "score: 1\n")).value == 0.0
