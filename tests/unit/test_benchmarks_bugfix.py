"""The `bugfix` benchmark through the real sandbox: each mutation operator's exact edit; generation on a tiny
hand-written package (pre-existing failures excluded, an endless loop discarded, deterministic, cached) and on a
real package's sdist and test suite (the untouched start scores 0, the original file restored scores 1.0, the
failing tests are hidden and the statement never quotes the changed code); release pairs, tiny (files that fail to
collect left out, feature tests not scored, the round-robin's order) and real (cachetools: the newer release's
code scores 1.0)."""

from __future__ import annotations

import difflib
import json
import os
import shutil
import textwrap
import time
from pathlib import Path

import pytest
import uv

from sica.benchmarks import OPENERS, BenchmarkContext, Problem
from sica.benchmarks import bugfix
from sica.benchmarks.bugfix import BugfixError, Package, mutation_bugs
from sica.benchmarks.bugfix.benchmark import BugfixBenchmark
from sica.benchmarks.bugfix.cache import GENERATOR
from sica.benchmarks.environments import ProblemEnvironmentError, problem_environment
from sica.benchmarks.mutations import find_mutations
from sica.benchmarks.sdists import fetch_sdist
from sica.config import default_envs_dir

CACHE = Path.home() / ".cache/sica/benchmarks"
INFLECTION = next(p for p in bugfix.PACKAGES if p.name == "inflection")
TINY = Package("tinypkg==1.0", "tinypkg", ("tests",))
TINY_CODE = '''\
"""A tiny package for the bugfix generator's tests."""


def clamp(value, low=0, high=10):
    if value < low:
        return low
    if value > high:
        return high
    return value


def describe(n):
    if n == 0:
        return "none"
    elif n == 1:
        return "one"
    else:
        return "many"


def steps(n):
    i = 0
    while i - n:
        i = i + 1
    return i
'''
TINY_TESTS = '''\
from tinypkg import clamp, describe, steps


def test_clamp():
    assert [clamp(v) for v in (-1, 0, 5, 10, 11)] == [0, 0, 5, 10, 10]


def test_describe():
    assert [describe(n) for n in (0, 1, 2)] == ["none", "one", "many"]


def test_steps():
    assert steps(3) == 3


def test_already_broken():
    assert describe(3) == "three"
'''


def edits(source: str) -> set[tuple[str, str]]:
    """Each mutation as (operator, the changed lines after it), for exact comparisons."""
    found = set()
    for mutation in find_mutations(textwrap.dedent(source)):
        after = mutation.apply(textwrap.dedent(source))
        changed = [line[2:] for line in difflib.ndiff(textwrap.dedent(source).splitlines(), after.splitlines())
                   if line.startswith("+ ")]
        found.add((mutation.operator, "\n".join(changed)))
    return found


def test_comparisons_flip_one_operator_in_place():
    assert edits("""\
        def f(a, b, c):
            return a < b <= c  # keep this comment
        """) == {("comparison", "    return a <= b <= c  # keep this comment"),
                 ("comparison", "    return a < b < c  # keep this comment")}
    assert edits("def f(a):\n    return (a) == 'é' != (a)\n") == {
        ("comparison", "    return (a) != 'é' != (a)"), ("comparison", "    return (a) == 'é' == (a)")}


def test_off_by_one_drops_a_one_or_moves_a_bound():
    assert edits("def f(xs, i):\n    return xs[i + 1]\n") == {("off-by-one", "    return xs[i]")}
    assert edits("def f(n):\n    return range(len(n))\n") == {("off-by-one", "    return range(len(n) + 1)")}
    assert edits("def f(s, i, j):\n    return s[i:j]\n") == {("off-by-one", "    return s[i + 1:j]"),
                                                             ("off-by-one", "    return s[i:j + 1]")}
    assert edits("def f(s):\n    return s[-1], 1 + len(s)\n") == set()  # a constant bound, a `1 +`: left alone


def test_dropped_branch_removes_a_guard_or_an_elif_whole():
    source = """\
        def f(x):
            if x is None:
                return 0
            if x > 9:  # big
                x = 9
            elif x < 0:
                x = 0
            else:
                x += 1
            return x
        """
    dropped = {after for operator, after in edits(source) if operator == "dropped-branch"}
    mutated = [m.apply(textwrap.dedent(source)) for m in find_mutations(textwrap.dedent(source))
               if m.operator == "dropped-branch"]
    assert dropped == {""}  # pure deletions
    assert sorted(mutated) == sorted([
        textwrap.dedent(source).replace("    if x is None:\n        return 0\n", ""),
        textwrap.dedent(source).replace("    elif x < 0:\n        x = 0\n", "")])
    # the only statement of its block stays (nothing would be left); an `else:` holding an `if` is no elif
    assert not [m for m in find_mutations("def f(x):\n    if x:\n        return 1\n") if m.operator == "dropped-branch"]
    nested = "def f(x):\n    if x:\n        y = 1\n    else:\n        if x:\n            y = 2\n        return y\n"
    assert [m.apply(nested) for m in find_mutations(nested) if m.operator == "dropped-branch"] == [
        "def f(x):\n    if x:\n        y = 1\n    else:\n        return y\n"]


def test_wrong_default_changes_an_int_or_a_bool_and_waits_for_the_body():
    mutations = find_mutations('def f(a, n=2, *, flag=True, name=None, neg=-1):\n    """Doc."""\n    return a\n')
    assert {(m.operator, m.line, m.replacement) for m in mutations} == {
        ("wrong-default", 3, "3"), ("wrong-default", 3, "False")}


def test_only_code_in_functions_is_mutated_and_functions_are_named():
    mutations = find_mutations("X = 1 + 1 if 2 < 3 else 0\n\n\nclass A:\n    def m(self, x):\n        return x < 1\n")
    assert [(m.operator, m.function, m.line) for m in mutations] == [("comparison", "A.m", 6)]


def write_sdist(cache: Path, package: Package, files: dict[str, str]) -> None:
    """An sdist of `package` in the benchmark cache, as if fetched: each file's text by its path."""
    sdist = cache / "sdists" / package.slug
    for path, text in files.items():
        (sdist / path).parent.mkdir(parents=True, exist_ok=True)
        (sdist / path).write_text(textwrap.dedent(text))
    (sdist / ".complete").write_text(package.requirement)


def tiny_context(cache: Path, messages: list[str] | None = None) -> BenchmarkContext:
    """A benchmark cache holding the tiny package's sdist, as if fetched; progress messages go to `messages`."""
    write_sdist(cache, TINY, {"tinypkg/__init__.py": TINY_CODE, "tests/test_tiny.py": TINY_TESTS})
    return BenchmarkContext(cache, default_envs_dir(os.geteuid()), uv.find_uv_bin(),
                            on_progress=(messages if messages is not None else []).append)


@pytest.fixture(scope="module")
def short_tries():
    """Tries of the tiny package end after a few seconds (one of them loops for ever)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mutation_bugs, "TRY_WALL_S", 5.0)
        yield


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, short_tries):
    """The tiny package's context and all its problems, generated once."""
    context = tiny_context(tmp_path_factory.mktemp("tiny"))
    return context, BugfixBenchmark(context, (TINY,), ()).problems()


def restore_original(problem: Problem, sdist: Path, tree: Path) -> list[str]:
    """Put the one mutated file back as the sdist has it; the code lines the bug had changed."""
    changed = [path for path in tree.rglob("*.py")
               if (sdist / path.relative_to(tree)).read_text() != path.read_text()]
    assert len(changed) == 1, changed
    original = (sdist / changed[0].relative_to(tree)).read_text()
    diff = difflib.ndiff(original.splitlines(), changed[0].read_text().splitlines())
    shutil.copy(sdist / changed[0].relative_to(tree), changed[0])
    return [line[2:].strip() for line in diff if line[:2] in ("- ", "+ ") and line[2:].strip()]


def test_tiny_package_excludes_preexisting_failures_and_discards_endless_loops(tiny, tree, sandbox):
    context, problems = tiny
    state = json.loads((context.cache_dir / "bugfix" / f"{TINY.slug}.generator-{GENERATOR}.json").read_text())
    assert state["baseline"]["not_passing"] == ["tests/test_tiny.py::test_already_broken"]
    assert state["exhausted"] and state["tried"] >= 1
    # `steps` has one candidate (dropping the `+ 1` loops for ever): tried, timed out, discarded
    assert any(m.function == "steps" for m in find_mutations(TINY_CODE))
    assert sorted(bug["function"] for bug in state["bugs"]) == ["clamp", "describe"]
    assert [p.id for p in problems] == ["bugfix/tinypkg-1.0/0", "bugfix/tinypkg-1.0/1"]
    for problem in problems:
        problem.lay_out(tree)
        assert not (tree / "tests" / "test_tiny.py").exists() and not (tree / ".complete").exists()
        start = problem.score(sandbox, tree, None)
        assert start.value == 0.0 and "fail-to-pass 0/1" in start.details, start.details
        restore_original(problem, fetch_sdist(TINY.requirement, context), tree)
        solved = problem.score(sandbox, tree, None)
        assert solved.value == 1.0 and "1 pre-existing failures not scored" in solved.details, solved.details
        shutil.rmtree(tree)
        tree.mkdir()


FORGING_PACKAGE_CODE = """\
import _pytest.reports as _reports
_made = _reports.TestReport.__init__
def _forged(self, *args, **kwargs):
    _made(self, *args, **kwargs)
    self.outcome = "passed"
_reports.TestReport.__init__ = _forged
"""


def test_scoring_runs_isolated_with_canaries_and_catches_a_forged_report(tiny, tree, sandbox):
    """Package code that makes every pytest report pass is caught by the canary tests; a tree module named as a
    hidden test module (an agent's scratch copy), a planted pytest.ini and bytecode caches do not change an honest
    score."""
    context, problems = tiny
    problem = problems[0]
    problem.lay_out(tree)
    module = tree / "tinypkg" / "__init__.py"
    unfixed = module.read_text()
    module.write_text(FORGING_PACKAGE_CODE + unfixed)
    forged = problem.score(sandbox, tree, None)
    assert forged.value == 0.0 and forged.tampered and "canary test" in forged.tampered, forged.details
    module.write_text(unfixed)
    restore_original(problem, fetch_sdist(TINY.requirement, context), tree)
    (tree / "test_tiny.py").write_text("def test_scratch():\n    assert False\n")
    (tree / "pytest.ini").write_text("[pytest]\naddopts = -p no_such_plugin\n")
    (tree / "tests" / "__pycache__").mkdir(parents=True, exist_ok=True)
    (tree / "tests" / "__pycache__" / "test_tiny.cpython-311-pytest-8.3.4.pyc").write_bytes(b"not bytecode")
    solved = problem.score(sandbox, tree, None)
    assert solved.value == 1.0 and solved.tampered is None, solved.details


def test_tiny_package_generation_is_deterministic_cached_and_count_stable(tiny, tmp_path, short_tries):
    context, problems = tiny
    started = time.monotonic()
    cached = BugfixBenchmark(context, (TINY,), ()).problems()
    first = BugfixBenchmark(context, (TINY,), ()).problems(1)
    assert time.monotonic() - started < 5
    messages: list[str] = []
    fresh = BugfixBenchmark(tiny_context(tmp_path, messages), (TINY,), ()).problems()
    assert "tinypkg: running its test suite" in messages and messages[-1].endswith("mutations tried, 2 kept")
    assert [p.id for p in first] == [p.id for p in problems][:1]
    assert [(p.id, p.statement) for p in problems] == [(p.id, p.statement) for p in cached] == [
        (p.id, p.statement) for p in fresh]


def test_a_broken_package_entry_is_one_clear_line(tmp_path):
    context = tiny_context(tmp_path)
    broken = Package("tinypkg==1.0", "tinypkg", ("no_such_tests",))
    with pytest.raises(BugfixError, match="does not run in its environment.*fix its entry"):
        BugfixBenchmark(context, (broken,), ()).problems(1)
    with pytest.raises(ProblemEnvironmentError, match="must be pinned.*: hypothesis$"):
        problem_environment(("hypothesis",), context)


@pytest.fixture(scope="module")
def inflection_context(tmp_path_factory):
    """A fresh problem cache with inflection's sdist (fetched once into the shared cache)."""
    shared = BenchmarkContext(CACHE, default_envs_dir(os.geteuid()), uv.find_uv_bin())
    cache = tmp_path_factory.mktemp("bugfix-cache")
    shutil.copytree(fetch_sdist(INFLECTION.requirement, shared), cache / "sdists" / INFLECTION.slug)
    return BenchmarkContext(cache, shared.envs_dir, shared.uv_bin)


def test_real_package_problems_hide_their_tests_and_score_only_the_fix(inflection_context, tree, sandbox):
    problems = BugfixBenchmark(inflection_context, (INFLECTION,), ()).problems(2)
    assert [p.id for p in problems] == ["bugfix/inflection-0.5.1/0", "bugfix/inflection-0.5.1/1"]
    sdist = fetch_sdist(INFLECTION.requirement, inflection_context)
    for problem in problems:
        assert problem.tools is not None and (problem.tools / "pytest").exists()
        assert (problem.tools.parent / ".complete").exists() and problem.tools.parent.stat().st_mode & 0o005 == 0o005
        problem.lay_out(tree)
        assert not (tree / "test_inflection.py").exists() and (tree / "inflection" / "__init__.py").exists()
        assert problem.score(sandbox, tree, None).value == 0.0
        changed = restore_original(problem, sdist, tree)
        assert changed and not any(line in problem.statement for line in changed), problem.statement
        assert "test_inflection.py::" in problem.statement
        solved = problem.score(sandbox, tree, None)
        assert solved.value == 1.0, solved.details
        shutil.rmtree(tree)
        tree.mkdir()


TINY_PAIR = bugfix.ReleasePair(Package("tinypair==1.0", "tinypair", ("tests",)), "1.1")
TINY_PAIR_OLDER = {
    "tinypair/__init__.py": """\
        def halve(n):
            return n / 2


        def greet(name):
            return "hello " + name
        """,
    "tests/test_removed.py": "def test_removed():\n    pass\n",
}
TINY_PAIR_NEWER = {
    "tinypair/__init__.py": """\
        def halve(n):
            return n // 2


        def greet(name, punctuation=""):
            return "hello " + name + punctuation


        def shout(name):
            return greet(name).upper()
        """,
    "tests/test_halve.py": "from tinypair import halve\n\n\ndef test_halve():\n    assert halve(5) == 2\n",
    "tests/test_greet.py": """\
        from tinypair import greet


        def test_greet():
            assert greet("x") == "hello x"


        def test_punctuation():
            assert greet("x", punctuation="!") == "hello x!"
        """,
    "tests/test_shout.py": "from tinypair import shout\n\n\ndef test_shout():\n    assert shout('x') == 'HELLO X'\n",
}


def copy_changed_code(older: Path, newer: Path, code: str, tree: Path) -> list[str]:
    """Copy the newer release's code files that differ from the older one's over `tree` (the known-good fix);
    the code lines the release changed."""
    changed = []
    for path in sorted((newer / code).rglob("*.py")):
        before = older / path.relative_to(newer)
        if not before.exists() or before.read_text() != path.read_text():
            diff = difflib.ndiff(before.read_text().splitlines() if before.exists() else [],
                                 path.read_text().splitlines())
            changed += [line[2:].strip() for line in diff if line[:2] in ("- ", "+ ") and line[2:].strip()]
            shutil.copy(path, tree / path.relative_to(newer))
    return changed


def test_a_release_pair_hides_failing_tests_and_leaves_out_features(tiny, tree, sandbox):
    """The newer tests on the older source: a test importing a new function fails to collect (its file is left
    out), a new keyword parameter is a feature (not scored), a changed result is the bug; the pair's problem
    joins the round after the packages' first bugs, the packages' problems unchanged."""
    context, tiny_problems = tiny
    write_sdist(context.cache_dir, TINY_PAIR.older, TINY_PAIR_OLDER)
    write_sdist(context.cache_dir, TINY_PAIR.newer, TINY_PAIR_NEWER)
    problems = BugfixBenchmark(context, (TINY,), (TINY_PAIR,)).problems()
    assert [p.id for p in problems] == ["bugfix/tinypkg-1.0/0", "bugfix/tinypair-1.0-1.1/0", "bugfix/tinypkg-1.0/1"]
    assert [p.statement for p in problems[::2]] == [p.statement for p in tiny_problems]
    assert [p.id for p in BugfixBenchmark(context, (TINY,), (TINY_PAIR,)).problems(2)] == [p.id for p in problems[:2]]
    state = json.loads((context.cache_dir / "bugfix" / f"tinypair-1.0-1.1.generator-{GENERATOR}.json")
                       .read_text())
    assert state["left_out"] == ["tests/test_shout.py"]
    assert state["lacking"] == ["tests/test_greet.py::test_punctuation"]
    assert state["problems"][0]["fail_to_pass"] == ["tests/test_halve.py::test_halve"]
    assert state["problems"][0]["pass_to_pass"] == ["tests/test_greet.py::test_greet"]
    problem = problems[1]
    problem.lay_out(tree)
    assert sorted(str(p.relative_to(tree)) for p in tree.rglob("*.py")) == ["tests/test_greet.py",
                                                                          "tinypair/__init__.py"]
    assert (tree / "tinypair/__init__.py").read_text() == textwrap.dedent(TINY_PAIR_OLDER["tinypair/__init__.py"])
    start = problem.score(sandbox, tree, None)
    assert start.value == 0.0 and "fail-to-pass 0/1 pass, pass-to-pass 1/1" in start.details, start.details
    older, newer = (fetch_sdist(p.requirement, context) for p in (TINY_PAIR.older, TINY_PAIR.newer))
    changed = copy_changed_code(older, newer, "tinypair", tree)
    assert "return n // 2" in changed and not any(line in problem.statement for line in changed), problem.statement
    assert "`tests/test_halve.py::test_halve`" in problem.statement and "assert halve(5) == 2" in problem.statement
    solved = problem.score(sandbox, tree, None)
    assert solved.value == 1.0 and "(1 other tests not scored)" in solved.details, solved.details


CACHETOOLS_PAIR = next(pair for pair in bugfix.PAIRS if pair.older.name == "cachetools")


def test_the_cachetools_release_pair_is_solved_by_the_newer_release(tmp_path, tree, sandbox):
    """cachetools 5.4.0 with 5.5.0's tests: three tests fail, their files are hidden, the start scores 0 and
    5.5.0's own code scores 1.0."""
    shared = BenchmarkContext(CACHE, default_envs_dir(os.geteuid()), uv.find_uv_bin())
    context = BenchmarkContext(tmp_path, shared.envs_dir, shared.uv_bin)
    releases = [fetch_sdist(p.requirement, shared) for p in (CACHETOOLS_PAIR.older, CACHETOOLS_PAIR.newer)]
    for sdist in releases:
        shutil.copytree(sdist, tmp_path / "sdists" / sdist.name)
    [problem] = BugfixBenchmark(context, (), (CACHETOOLS_PAIR,)).problems()
    assert problem.id == "bugfix/cachetools-5.4.0-5.5.0/0" and problem.tools is not None
    assert problem.statement.count("\n- `tests/") == 3, problem.statement
    problem.lay_out(tree)
    older, newer = releases
    assert not (tree / "tests/test_ttl.py").exists() and not (tree / "tests/test_tlru.py").exists()
    assert (tree / "tests/test_lru.py").read_text() == (newer / "tests/test_lru.py").read_text()
    assert problem.score(sandbox, tree, None).value == 0.0
    changed = copy_changed_code(older, newer, CACHETOOLS_PAIR.older.code, tree)
    assert "return expired" in changed and not any(line in problem.statement for line in changed), problem.statement
    solved = problem.score(sandbox, tree, None)
    assert solved.value == 1.0 and "fail-to-pass 3/3 pass" in solved.details, solved.details


def test_bugfix_is_registered():
    assert "bugfix" in OPENERS and OPENERS["bugfix"][0]
