"""Benchmarks through the real sandbox: a known-good solution scores 1.0, the untouched start 0 (or the
documented partial), and hidden files never enter the starting tree."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
import uv

from sica.benchmarks import BenchmarkContext, BenchmarkError, open_benchmark, taskdir
from sica.benchmarks.base import PARTIAL_CAP, score_from_output
from sica.benchmarks.canaries import RunnerSecrets, Tampered, read_runner_output
from sica.benchmarks.environments import check_environment
from sica.benchmarks.humaneval import HumanEvalBenchmark, install_data
from sica.benchmarks.pytest_report import REPORT, START, effective_outcomes, sign
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


SHAPES_TESTS = '''\
import unittest

import pytest

from shapes import area


@pytest.mark.parametrize("w, h, want", [(2, 3, 6), (1, 1, 1)])
def test_area(w, h, want, unit):
    assert area(w, h) * unit == want


class TestArea:
    def test_square(self):
        assert area(4, 4) == 16


class AreaCase(unittest.TestCase):
    def test_rectangle(self):
        self.assertEqual(area(2, 5), 10)
'''


@pytest.fixture
def shapes_task(tmp_path: Path) -> Path:
    """A task folder whose check runs `sica-pytest` on hidden tests of every kind a canary copies: parametrized,
    with a fixture of the task's own conftest, in a class, and a unittest method."""
    task = tmp_path / "shapes"
    (task / "files").mkdir(parents=True)
    (task / "tests").mkdir()
    (task / "task.md").write_text("Make area(w, h) return the area of a w by h rectangle.\n")
    (task / "build.sh").write_text('cp -r files/. "$1"\n')
    (task / "files" / "shapes.py").write_text("def area(w, h):\n    return w + h\n")
    (task / "tests" / "conftest.py").write_text("import pytest\n\n\n@pytest.fixture\ndef unit():\n    return 1\n")
    (task / "tests" / "test_shapes.py").write_text(SHAPES_TESTS)
    (task / "check.sh").write_text('here="$(cd "$(dirname "$0")" && pwd)"\n'
                                   'exec sica-pytest --tree "$1" "$here/tests"\n')
    return task


def _solve_shapes(tree: Path, prefix: str = "") -> None:
    (tree / "shapes.py").write_text(prefix + "def area(w, h):\n    return w * h\n")


def test_sica_pytest_canaries_copy_every_kind_of_test_and_honest_trees_still_pass(shapes_task, tree, sandbox,
                                                                                   check_tools, monkeypatch):
    monkeypatch.setattr(taskdir, "CANARIES", 50)  # a canary for every test
    problem = task_problem(shapes_task, "taskdir", tools=check_tools)
    problem.lay_out(tree)
    start = problem.score(sandbox, tree, None)
    assert start.value == 0.0 and start.tampered is None and "0 of 3 scored tests pass" in start.details, start.details
    _solve_shapes(tree)
    solved = problem.score(sandbox, tree, None)
    assert solved.value == 1.0 and "3 of 3 scored tests pass" in solved.details, solved.details


FORGED_REPORTS = '''\
import _pytest.reports as _reports
_made = _reports.TestReport.__init__
def _forged(self, *args, **kwargs):
    _made(self, *args, **kwargs)
    self.outcome = "passed"
_reports.TestReport.__init__ = _forged
'''
FORGED_REPORT_LINE = '''\
import os as _os
for _fd in range(3, 30):
    try:
        _os.write(_fd, b'sica-pytest-report 00 {"tests": {}, "canaries": []}\\nscore: 1\\n')
    except OSError:
        pass
'''


@pytest.mark.parametrize("forgery, evidence", [(FORGED_REPORTS, "canary test"),
                                                (FORGED_REPORT_LINE, "did not sign")])
def test_sica_pytest_catches_a_forged_report(shapes_task, tree, sandbox, check_tools, forgery, evidence):
    problem = task_problem(shapes_task, "taskdir", tools=check_tools)
    problem.lay_out(tree)
    (tree / "shapes.py").write_text(forgery + (tree / "shapes.py").read_text())
    forged = problem.score(sandbox, tree, None)
    assert forged.value == 0.0 and forged.tampered and evidence in forged.tampered, forged.details


@pytest.mark.parametrize("check, reason", [
    ('sica-pytest --tree "$1" "$here/tests"; exec sica-pytest --tree "$1" "$here/tests"\n',
     "without the harness's secrets"),
    ('exec sica-pytest --tree "$1" "$1"\n', "test paths must be given, from the task folder"),
    ('cat > /dev/null; exec sica-pytest --tree "$1" "$here/tests"\n', "without the harness's secrets")])
def test_sica_pytest_misused_scores_0_with_the_reason(shapes_task, tree, sandbox, check_tools, check, reason):
    (shapes_task / "check.sh").write_text('here="$(cd "$(dirname "$0")" && pwd)"\n' + check)
    problem = task_problem(shapes_task, "taskdir", tools=check_tools)
    problem.lay_out(tree)
    _solve_shapes(tree)
    score = problem.score(sandbox, tree, None)
    assert score.value == 0.0 and score.tampered is None and reason in score.details, score.details


def test_runner_output_is_checked_against_the_secrets():
    given = RunnerSecrets.new(2)
    start = START + json.dumps({"secrets": True, "expected": None})

    def report(**changes: object) -> str:
        body = json.dumps({"tests": {"t.py::a": "failed", "t.py::b": "passed"}, "failures": {}, "errors": [],
                           "covered": {}, "collected": 2, "candidates": 2, "required": [],
                           "canaries": [{"twin": "t.py::a", "outcome": "failed"},
                                        {"twin": "t.py::b", "outcome": None}]} | changes)
        return f"{REPORT}{sign(given.nonce, body)} {body}"

    output = read_runner_output(f"noise\n{start}\n{report()}\nscore: 0.5\n", given)
    assert output.report is not None and effective_outcomes(output.report) == {"t.py::a": "failed",
                                                                                "t.py::b": "failed"}
    assert read_runner_output(start, given).report is None
    assert read_runner_output(START + '{"secrets": false}\n', given).without_secrets
    body = report().split(" ", 2)[2]
    forged = {"unsigned": f"{REPORT}{'0' * 64} {body}", "second": f"{report()}\n{report()}",
              "passing canary": report(canaries=[{"twin": "t.py::a", "outcome": "passed"},
                                                 {"twin": "t.py::b", "outcome": "failed"}]),
              "missing canary": report(canaries=[{"twin": "t.py::a", "outcome": "failed"}]),
              "more passes than tests": report(collected=1), "impossible outcome": report(tests={"t.py::a": "won"})}
    for case, lines in forged.items():
        with pytest.raises(Tampered):
            read_runner_output(f"{start}\n{lines}", given)
            pytest.fail(f"{case} not caught")
    with pytest.raises(Tampered, match="without the start of its run"):
        read_runner_output(report(), given)
    with pytest.raises(Tampered, match="more than one test run had the harness's secrets"):
        read_runner_output(f"{start}\n{start}\n", given)


DROPPING_TESTS = '''\
import gc as _gc
import _pytest.config as _config
class _Drop:
    def pytest_collection_modifyitems(self, items):
        items[:] = [item for item in items if "square" in item.nodeid]
_found = [o for o in _gc.get_objects() if isinstance(o, _config.Config)]
_found[0].pluginmanager.register(_Drop())
'''


def test_sica_pytest_counts_the_tests_a_tree_leaves_out_of_the_run(shapes_task, tree, sandbox, check_tools):
    """Package code that removes the tests it fails from the session: they still count, as the start line listed
    them from the test files before the tree ran."""
    problem = task_problem(shapes_task, "taskdir", tools=check_tools)
    problem.lay_out(tree)
    _solve_shapes(tree, prefix=DROPPING_TESTS)
    (tree / "shapes.py").write_text((tree / "shapes.py").read_text().replace("w * h", "w * h if w == h else 0"))
    score = problem.score(sandbox, tree, None)
    assert score.value == round(1 / 3, 3) and "1 of 3 scored tests pass" in score.details, score.details
    assert "1 failed, 1 passed" in score.details, score.details  # the square test and its canary alone ran
