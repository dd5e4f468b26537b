"""A release pair's bug: the older release's source, with the newer release's test paths and test configuration in
place of its own, runs those tests in the sandbox, and so does the newer source. Fail-to-pass are the tests that
fail on the older source and pass on the newer, pass-to-pass those that pass on both; nothing else is scored. A
test asking for what the older release lacks is a feature request, not a bug: a newer test file that fails to
collect on the older source (it imports a new name) is left out of the tree and of every run, and a test failing
for a new name (`LACKING_NAME`: an import in the test, a module attribute, a keyword parameter) is not scored. A
pair with fail-to-pass tests makes one problem (they may share one cause, so they are not split): the older source
with the newer tests but the files holding them, a statement by the same `bug_report` (never quoting the code diff
between the releases), and the same scorer, the newer release's tests put back; the newer release's code solves
it."""

from __future__ import annotations

import difflib
import json
import re
import tempfile
from pathlib import Path
from typing import Any, cast

from sica.benchmarks.base import BenchmarkContext, Problem, fingerprint, output_tail
from sica.benchmarks.bugfix import BugfixError, ReleasePair
from sica.benchmarks.bugfix.cache import GENERATOR, load_state, made_by, save_state
from sica.benchmarks.bugfix.scoring import SCORE_WALL_S, scorer
from sica.benchmarks.bugfix.statements import SHOWN_FAILURES, bug_report, changed_lines
from sica.benchmarks.bugfix.suite import RUNNER, copy_sdist, file_of_test, files_of_tests, gather_tests, run_tests
from sica.benchmarks.environments import problem_environment
from sica.benchmarks.pytest_report import restore_tests
from sica.benchmarks.sdists import fetch_sdist
from sica.sandbox import Sandbox


class PairBugs:
    """A release pair's problem: the newer release's tests run once on each release's source (in the sandbox) when
    the pair is opened, and the outcome is cached. At most one problem: the tests that fail on the older source
    and pass on the newer one, all hidden and fixed together (they may share one cause, so they are not split)."""

    def __init__(self, pair: ReleasePair, context: BenchmarkContext, sandbox: Sandbox) -> None:
        self.pair = pair
        self.context = context
        self.older_tree = fetch_sdist(pair.older.requirement, context)
        self.newer_tree = fetch_sdist(pair.newer.requirement, context)
        self.tools = problem_environment(pair.older.test_requirements, context)
        self.cache = context.cache_dir / "bugfix" / f"{pair.slug}.generator-{GENERATOR}.json"
        entry = {"pair": repr(pair)}
        state = load_state(self.cache, entry)
        if state is None:
            state = {"made_by": made_by(entry), **self._compare(sandbox)}
            save_state(self.cache, state)
        self.state = state

    @property
    def bugs(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self.state["problems"])

    @property
    def left_out(self) -> list[str]:
        """The newer test files that do not even collect on the older source: never laid out, run or scored."""
        return cast(list[str], self.state["left_out"])

    def generate(self, wanted: int) -> None:
        """Nothing to do: a pair's problem is made when the pair is opened."""

    def _compare(self, sandbox: Sandbox) -> dict[str, Any]:
        """Run the newer tests on the newer source, then on the older one, leaving out the test files that fail to
        collect there (until none does); the problem is the tests failing on the older source and passing on the
        newer, but those failing for a name the older release lacks."""
        older, newer = self.pair.older, self.pair.newer
        self.context.on_progress(f"{self.pair.slug}: running {newer.requirement}'s tests on both sources")
        if missing := [path for path in newer.tests if not (self.newer_tree / path).exists()]:
            raise BugfixError(
                f"{newer.requirement} has no {', '.join(missing)}: fix its entry in the bugfix release pair table"
            )
        on_newer, result = run_tests(sandbox, newer, self.newer_tree, self.tools, wall_s=SCORE_WALL_S)
        if on_newer is None or on_newer.errors or not on_newer.passed:
            detail = (
                ("; ".join(on_newer.errors)[:300] or "no test passed")
                if on_newer
                else f"{result.describe()}: {output_tail(result.stderr)}"
            )
            raise BugfixError(
                f"the tests of {newer.requirement} do not run on its own source ({detail}): fix its "
                "entry in the bugfix release pair table"
            )
        left_out: list[str] = []
        while True:
            on_older, result = run_tests(
                sandbox,
                newer,
                self.older_tree,
                self.tools,
                tests_from=self.newer_tree,
                leave_out=left_out,
                wall_s=SCORE_WALL_S + 10 * on_newer.seconds,
            )
            failing_files = {error.split(": ", 1)[0] for error in on_older.errors} if on_older else set()
            if on_older is None or not all(self._istest_file(path) for path in failing_files):
                why = f"on {older.version}: " + ("; ".join(on_older.errors)[:300] if on_older else result.describe())
                self.context.on_progress(f"{self.pair.slug}: no problem ({why})")
                return {"left_out": left_out, "problems": [], "why": why}
            if not failing_files:
                break
            left_out = sorted({*left_out, *failing_files})
        fixed = [test for test in on_newer.passed if on_older.tests.get(test) == "failed"]
        lacking = [test for test in fixed if _lacks_a_name(on_older.failures.get(test, {}))]
        fail_to_pass = [test for test in fixed if test not in lacking]
        pass_to_pass = [test for test in on_newer.passed if on_older.tests.get(test) == "passed"]
        problems = [
            {
                "fail_to_pass": fail_to_pass,
                "pass_to_pass": pass_to_pass,
                "failures": {test: on_older.failures.get(test, {}) for test in fail_to_pass[:SHOWN_FAILURES]},
            }
        ]
        self.context.on_progress(
            f"{self.pair.slug}: {len(fail_to_pass)} tests fail-to-pass, {len(lacking)} "
            f"need names {older.version} lacks, {len(left_out)} test files left out"
        )
        return {
            "left_out": left_out,
            "lacking": lacking,
            "seconds": max(on_older.seconds, on_newer.seconds),
            "tests": len([test for test in on_newer.tests if file_of_test(test) not in left_out]),
            "problems": problems if fail_to_pass else [],
        }

    def _istest_file(self, path: str) -> bool:
        """A test module of the newer release (a conftest or a package's `__init__.py` is not left out)."""
        return (
            path.endswith(".py")
            and Path(path).name not in ("conftest.py", "__init__.py")
            and any(Path(path).is_relative_to(tests) for tests in self.pair.newer.tests)
            and (self.newer_tree / path).is_file()
        )

    def problem(self, index: int) -> Problem:
        pair, record = self.pair, self.bugs[index]
        fail_to_pass, pass_to_pass = record["fail_to_pass"], record["pass_to_pass"]
        hidden_files = files_of_tests(fail_to_pass)

        def lay_out(dest: Path) -> None:
            copy_sdist(self.older_tree, dest)
            with tempfile.TemporaryDirectory(prefix="sica-bugfix-tests-") as newer_tests:
                gather_tests(pair.newer, self.newer_tree, Path(newer_tests), [*self.left_out, *hidden_files])
                restore_tests(newer_tests, list(pair.newer.tests), str(dest))

        score = scorer(
            pair.newer,
            self.tools,
            self.newer_tree,
            fail_to_pass,
            pass_to_pass,
            not_scored=f"{self.state['tests'] - len(fail_to_pass) - len(pass_to_pass)} other tests",
            wall_s=SCORE_WALL_S + 10 * self.state["seconds"],
            leave_out=self.left_out,
        )
        changes = changed_lines(_release_diff(self.older_tree, self.newer_tree, pair.older.code))
        statement = bug_report(pair.older, fail_to_pass, record["failures"], changes)
        hidden = json.dumps({"pair": repr(pair), "left_out": self.left_out, **record}, sort_keys=True)
        return Problem(
            f"bugfix/{pair.slug}/{index}",
            "bugfix",
            statement,
            lay_out,
            score,
            tools=self.tools,
            fingerprint=fingerprint(hidden, RUNNER),
        )


#: Failures for a name the older release does not have: an import inside the test, a module attribute, a keyword
#: parameter. Such a test asks for a feature, not a fix.
LACKING_NAME = re.compile(
    r"(ImportError|ModuleNotFoundError): |AttributeError: module '[^']+' has no attribute "
    r"|TypeError: \S+\(\) got an unexpected keyword argument "
)


def _lacks_a_name(failure: dict[str, str]) -> bool:
    return LACKING_NAME.match(failure.get("message", "")) is not None


def _release_diff(older: Path, newer: Path, code: str) -> str:
    """The unified diff of the code folder between two releases' trees: what a pair's statement must not quote."""
    files = sorted(
        {
            str(path.relative_to(tree))
            for tree in (older, newer)
            for path in (tree / code).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        }
    )
    patch = ""
    for path in files:
        before, after = (_text(tree / path).splitlines(keepends=True) for tree in (older, newer))
        patch += "".join(difflib.unified_diff(before, after, f"a/{path}", f"b/{path}"))
    return patch


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
