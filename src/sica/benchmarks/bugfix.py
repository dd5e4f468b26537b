"""`bugfix`: SWE-style problems made from real packages' sdists and their own test suites.

For each package of a pinned table the generator fetches the sdist, builds the problem environment (pytest and
the package's test dependencies, not the package) and runs the suite once in the sandbox, with coverage: tests
that do not pass then are pre-existing failures, never scored. It then tries one-spot bugs (`mutations`) on
covered lines, in a seeded order, each in the sandbox under a wall limit, and keeps one when some previously
passing tests now fail (fail-to-pass) while every other one still passes (pass-to-pass); an import or collection
error, a timeout or a vanished test discards it. At most one bug per function, `PROBLEMS_PER_PACKAGE` per package.

The statement is a bug report written from the failing tests (their names, the failing test line, the error's
first line), never from the change. The starting tree is the sdist with the bug and without the test files that
hold the fail-to-pass tests; the scorer puts every original test path back into a copy of the final tree and
runs the suite in the sandbox: solved (1.0) iff all fail-to-pass and pass-to-pass tests pass, else 0.0.

Release pairs (`PAIRS`) make problems from history instead: the older release's source, with the newer release's
test paths and test configuration in place of its own, runs those tests in the sandbox, and so does the newer
source. Fail-to-pass are the tests that fail on the older source and pass on the newer, pass-to-pass those that
pass on both; nothing else is scored. A test asking for what the older release lacks is a feature request, not a
bug: a newer test file that fails to collect on the older source (it imports a new name) is left out of the tree
and of every run, and a test failing for a new name (`LACKING_NAME`: an import in the test, a module attribute, a
keyword parameter) is not scored. A pair with fail-to-pass tests makes one problem (they may share one cause, so
they are not split): the older source with the newer tests but the files holding them, a statement by the same
`bug_report` (never quoting the code diff between the releases), and the same scorer, the newer release's tests
put back; the newer release's code solves it.

Generation is slow (a test run per try), so each package's progress and each pair's outcome are cached as JSON
under `cache_dir/bugfix/` (keyed by `GENERATOR` and the table entry) and resumed; problems come round-robin over the
packages and then the pairs (each package's first bug, each pair's problem, each package's second bug...), so the
k-th problem is the same whatever count is asked."""

from __future__ import annotations

import difflib
import functools
import json
import os
import random
import re
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from sica.benchmarks.base import BenchmarkContext, BenchmarkError, Problem, Score, fingerprint, output_tail, run_checks
from sica.benchmarks.canaries import RunnerSecrets, Tampered, read_runner_output
from sica.benchmarks.environments import TEST_RUNNER, problem_environment
from sica.benchmarks.mutations import Mutation, find_mutations
from sica.benchmarks.pytest_report import CONFIG_FILES, effective_outcomes, restore_tests
from sica.benchmarks.sdists import fetch_sdist
from sica.sandbox import Sandbox, SandboxResult, open_sandbox

#: Bump when generation changes: problem sets cached by another generator are not reused.
GENERATOR = 1
PROBLEMS_PER_PACKAGE = 20
RUNNER = Path(__file__).with_name("pytest_report.py")
Scorer = Callable[[Sandbox, Path, "str | None"], Score]
#: Root files that may configure pytest; scoring restores the originals (and removes the tree's own).
TEST_CONFIGURATION = CONFIG_FILES
#: Canary tests in a scoring run: copies of fail-to-pass tests first (the ones a forger targets), then others.
CANARIES = 5
CANARY_FAIL_TO_PASS = 3
#: How many failing tests a statement describes in full.
SHOWN_FAILURES = 5
#: Wall limits of a try and of a scoring run: this plus ten times the baseline run's time (an endless loop ends).
TRY_WALL_S = 60.0
SCORE_WALL_S = 120.0


class BugfixError(BenchmarkError):
    """A package whose tests cannot be run, or a cached problem set that no longer fits its sdist; one line."""


@dataclass(frozen=True)
class Package:
    """A package under test: its pinned sdist, the folder of its code (relative to the sdist's root), its test
    paths (files or folders, relative to the root), the folder that goes on sys.path, and its pinned test
    dependencies (the environment always has pytest)."""

    requirement: str
    code: str
    tests: tuple[str, ...]
    source: str = "."
    test_requirements: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.requirement.partition("==")[0]

    @property
    def version(self) -> str:
        return self.requirement.partition("==")[2]

    @property
    def slug(self) -> str:
        return f"{self.name}-{self.version}"


#: Pure-Python packages whose sdists ship their test suites, each suite runs in seconds with plain pytest.
PACKAGES: tuple[Package, ...] = (
    Package("toolz==0.12.1", "toolz", ("toolz/tests",)),
    Package("more-itertools==10.5.0", "more_itertools", ("tests",)),
    Package("cachetools==5.5.0", "src/cachetools", ("tests",), source="src"),
    Package("inflection==0.5.1", "inflection", ("test_inflection.py",)),
    Package("idna==3.10", "idna", ("tests",)),
)


@dataclass(frozen=True)
class ReleasePair:
    """Two releases of a package sharing one layout (the older one's entry): the older source meets the newer
    release's tests and test configuration, and what fails on it but passes on the newer source is a bug."""

    older: Package
    newer_version: str

    @property
    def newer(self) -> Package:
        return replace(self.older, requirement=f"{self.older.name}=={self.newer_version}")

    @property
    def slug(self) -> str:
        return f"{self.older.slug}-{self.newer_version}"


#: Consecutive releases whose newer tests fail on the older source and pass on the newer one (cachetools: `expire`
#: returns the expired items; more-itertools: `distinct_permutations` of unsortable items, `seekable.relative_seek`;
#: click: `multiple` with `is_flag` refused).
PAIRS: tuple[ReleasePair, ...] = (
    ReleasePair(Package("cachetools==5.4.0", "src/cachetools", ("tests",), source="src"), "5.5.0"),
    ReleasePair(Package("more-itertools==10.3.0", "more_itertools", ("tests",)), "10.4.0"),
    ReleasePair(Package("click==8.1.2", "src/click", ("tests",), source="src"), "8.1.3"),
)


@dataclass(frozen=True)
class TestRun:
    """What `pytest_report.py` said: each test's outcome, failure details, collection errors, covered lines."""

    tests: dict[str, str]
    failures: dict[str, dict[str, str]]
    errors: list[str]
    covered: dict[str, list[int]]
    seconds: float

    @property
    def passed(self) -> list[str]:
        return sorted(test for test, outcome in self.tests.items() if outcome == "passed")


def run_tests(
    sandbox: Sandbox,
    package: Package,
    tree: Path,
    tools: Path,
    *,
    cover: bool = False,
    tests_from: Path | None = None,
    leave_out: Collection[str] = (),
    twins: Collection[str] | None = None,
    wall_s: float = 300.0,
) -> tuple[TestRun | None, SandboxResult]:
    """Run the package's tests on a copy of `tree` in the sandbox with the trusted runner (first putting in place
    the test paths and test configuration of `tests_from`, but its files `leave_out`, when given); with `twins`
    (when scoring), `CANARIES` canary tests among them, copying those tests first. The report is None when the
    run did not finish with one; `Tampered` when its output was forged."""
    given = RunnerSecrets.new(CANARIES if twins is not None else 0, tuple(twins or ()))
    with tempfile.TemporaryDirectory(prefix="sica-bugfix-") as hidden:
        runner = Path(hidden) / RUNNER.name
        shutil.copy(RUNNER, runner)
        restore: list[str] = []
        if tests_from is not None:
            originals = Path(hidden) / "tests"
            originals.mkdir(mode=0o755)
            _gather_tests(package, tests_from, originals, leave_out)
            restore = ["--tests-from", str(originals)]

        def command(inside: Path) -> tuple[str, ...]:
            return (
                "python",
                "-I",
                "-B",
                str(runner),
                "--tree",
                str(inside),
                "--source",
                package.source,
                *(["--cover", package.code] if cover else []),
                *restore,
                *package.tests,
            )

        result = run_checks(sandbox, tree, Path(hidden), command, tools=tools, wall_s=wall_s, stdin=given.stdin())
    output = read_runner_output(result.stdout, given)
    if result.ending != "exit" or output.report is None:
        return None, result
    report = output.report
    return TestRun(
        effective_outcomes(report), report["failures"], report["errors"], report["covered"], result.seconds
    ), result


def _test_configuration(sdist: Path) -> list[str]:
    """What configures pytest in a package's tree: its `conftest.py` files and root configuration files."""
    conftests = [str(path.relative_to(sdist)) for path in sdist.rglob("conftest.py")]
    roots = [name for name in TEST_CONFIGURATION if (sdist / name).is_file()]
    return sorted({*conftests, *roots})


def _gather_tests(package: Package, sdist: Path, dest: Path, leave_out: Collection[str] = ()) -> None:
    """Copy the package's test paths and test configuration from `sdist` into `dest`, but the files `leave_out`."""
    for path in [*package.tests, *_test_configuration(sdist)]:
        _copy_path(sdist / path, dest / path)
    for path in leave_out:
        (dest / path).unlink(missing_ok=True)


def _copy_path(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, dest, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy(source, dest)


def _made_by(entry: dict[str, str]) -> dict[str, Any]:
    """What a cached problem set belongs to: this generator, its table entry and this test environment only."""
    return {"generator": GENERATOR, **entry, "runner": list(TEST_RUNNER)}


def _load_state(cache: Path, entry: dict[str, str]) -> dict[str, Any] | None:
    """The state cached for `entry` by this generator, if any."""
    try:
        state = json.loads(cache.read_text(encoding="utf-8"))
        return state if state.get("made_by") == _made_by(entry) else None
    except (OSError, ValueError):
        return None


def _save_state(cache: Path, state: dict[str, Any]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_name(f".{cache.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(state, indent=1), encoding="utf-8")
    os.replace(partial, cache)


class PackageBugs:
    """One package's bugs, generated on demand in a fixed order and cached (its progress resumes)."""

    def __init__(self, package: Package, context: BenchmarkContext, sandbox: Sandbox) -> None:
        self.package = package
        self.context = context
        self.sandbox = sandbox
        self.tree = fetch_sdist(package.requirement, context)
        self.tools = problem_environment(package.test_requirements, context)
        self.cache = context.cache_dir / "bugfix" / f"{package.slug}.generator-{GENERATOR}.json"
        self.state = self._load()

    @property
    def bugs(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self.state["bugs"])

    @property
    def baseline_passed(self) -> list[str]:
        return cast(list[str], self.state["baseline"]["passed"])

    @property
    def preexisting_failures(self) -> list[str]:
        return cast(list[str], self.state["baseline"]["not_passing"])

    def _load(self) -> dict[str, Any]:
        entry = {"package": repr(self.package)}
        return _load_state(self.cache, entry) or {
            "made_by": _made_by(entry),
            "baseline": self._baseline(),
            "tried": 0,
            "bugs": [],
        }

    def problem(self, index: int) -> Problem:
        return _problem(self, index)

    def _baseline(self) -> dict[str, Any]:
        self.context.on_progress(f"{self.package.name}: running its test suite")
        run, result = run_tests(self.sandbox, self.package, self.tree, self.tools, cover=True)
        if run is None or run.errors or not run.passed:
            detail = "; ".join(run.errors)[:300] if run else f"{result.describe()}: {output_tail(result.stderr)}"
            raise BugfixError(
                f"the test suite of {self.package.requirement} does not run in its environment "
                f"({detail or 'no test passed'}): fix its entry in the bugfix package table"
            )
        return {
            "passed": run.passed,
            "not_passing": sorted(set(run.tests) - set(run.passed)),
            "seconds": run.seconds,
            "covered": run.covered,
        }

    @functools.cached_property
    def candidates(self) -> list[tuple[str, Mutation]]:
        """Every mutation on a line the baseline ran, in the package's fixed, seeded order."""
        covered = {path: set(lines) for path, lines in self.state["baseline"]["covered"].items()}
        found = []
        for path in sorted(covered):
            if any(Path(path).is_relative_to(tests) for tests in self.package.tests):
                continue
            source = (self.tree / path).read_text(encoding="utf-8")
            found += [(path, m) for m in find_mutations(source) if m.line in covered[path]]
        random.Random(f"{self.package.requirement} {GENERATOR}").shuffle(found)
        return found

    def generate(self, wanted: int) -> None:
        """Try candidates until there are `wanted` bugs (at most `PROBLEMS_PER_PACKAGE`) or none are left."""
        wanted = min(wanted, PROBLEMS_PER_PACKAGE)
        if len(self.bugs) >= wanted or self.state.get("exhausted"):
            return
        candidates = self.candidates
        used = {(bug["file"], bug["function"]) for bug in self.bugs}
        while len(self.bugs) < wanted and self.state["tried"] < len(candidates):
            path, mutation = candidates[self.state["tried"]]
            self.state["tried"] += 1
            if (path, mutation.function) not in used:
                bug = self._try(path, mutation)
                if bug is not None:
                    self.bugs.append(bug)
                    used.add((path, mutation.function))
            self.state["exhausted"] = self.state["tried"] >= len(candidates)
            _save_state(self.cache, self.state)
            self.context.on_progress(
                f"{self.package.name}: {self.state['tried']}/{len(candidates)} mutations tried, {len(self.bugs)} kept"
            )

    def _try(self, path: str, mutation: Mutation) -> dict[str, Any] | None:
        """The bug record if the mutation makes some passing tests fail and leaves the others passing."""
        original = (self.tree / path).read_text(encoding="utf-8")
        mutated = mutation.apply(original)
        with tempfile.TemporaryDirectory(prefix="sica-bugfix-try-") as scratch:
            Path(scratch).chmod(0o755)
            tree = Path(scratch) / "tree"
            _copy_sdist(self.tree, tree)
            (tree / path).write_text(mutated, encoding="utf-8")
            wall_s = TRY_WALL_S + 10 * self.state["baseline"]["seconds"]
            run, _ = run_tests(self.sandbox, self.package, tree, self.tools, wall_s=wall_s)
        if run is None or run.errors:
            return None
        broken = [test for test in self.baseline_passed if run.tests.get(test) != "passed"]
        if not broken or any(run.tests.get(test) != "failed" for test in broken):
            return None
        patch = "".join(
            difflib.unified_diff(
                original.splitlines(keepends=True), mutated.splitlines(keepends=True), f"a/{path}", f"b/{path}"
            )
        )
        return {
            "file": path,
            "operator": mutation.operator,
            "function": mutation.function,
            "line": mutation.line,
            "start": mutation.start,
            "end": mutation.end,
            "before": original[mutation.start : mutation.end],
            "replacement": mutation.replacement,
            "patch": patch,
            "fail_to_pass": broken,
            "failures": {test: run.failures.get(test, {}) for test in broken[:SHOWN_FAILURES]},
        }


def _changed_lines(patch: str) -> set[str]:
    """The code lines a patch removes or adds (stripped): what a statement must never quote. A line with fewer
    than two letters or digits (a lone bracket, `'1'`) tells nothing of the change and would hide every detail."""
    return {
        line[1:].strip()
        for line in patch.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---")) and sum(map(str.isalnum, line[1:])) >= 2
    }


def bug_report(package: Package, failing: list[str], failures: dict[str, dict[str, str]], never_quote: set[str]) -> str:
    """An issue-style statement from the failing tests alone; a test whose details would quote `never_quote`
    code is named without them."""
    count, fail = (f"{len(failing)} tests", "fail") if len(failing) > 1 else ("1 test", "fails")
    lines = [
        f"# {package.name} {package.version}: {count} of its own test suite {fail}",
        "",
        f"In this checkout of {package.name}, {count} that should pass {fail}:",
        "",
    ]
    for test in failing[:SHOWN_FAILURES]:
        detail = failures.get(test, {})
        quoted = [text for text in (detail.get("line", ""), detail.get("message", "")) if text]
        if any(code in text for code in never_quote for text in quoted):
            quoted = []
        lines += [f"- `{test}`", *(f"      {text}" for text in quoted)]
    if len(failing) > SHOWN_FAILURES:
        lines.append(f"- and {len(failing) - SHOWN_FAILURES} more")
    path = " (with `src` on PYTHONPATH)" if package.source == "src" else ""
    lines += [
        "",
        "Find the bug in the package's code and fix it: these tests must pass and the rest of the suite "
        "must keep passing. The test files holding these tests are not in your tree; they are put back, "
        "unchanged, with every other test file when your fix is checked, so change the code, not the tests. "
        "pytest and the package's test dependencies are on PATH; the package itself is not installed: its "
        f"source is this tree, and `python -m pytest` run from the tree's root{path} imports it from there.",
    ]
    return "\n".join(lines) + "\n"


def _copy_sdist(sdist: Path, dest: Path) -> None:
    shutil.copytree(sdist, dest, symlinks=True, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".complete"))


def _test_file(test: str) -> str:
    """The file that holds a test (a pytest node id)."""
    return test.split("::")[0]


def _test_files(tests: list[str]) -> list[str]:
    return sorted({_test_file(test) for test in tests})


def _scorer(
    package: Package,
    tools: Path,
    tests_from: Path,
    fail_to_pass: list[str],
    pass_to_pass: list[str],
    *,
    not_scored: str,
    wall_s: float,
    leave_out: Collection[str] = (),
) -> Scorer:
    """A problem's scorer: the test paths and configuration of `tests_from` (but `leave_out`) put back into a copy
    of the final tree and run in the sandbox with canary tests among them; 1.0 iff every fail-to-pass and
    pass-to-pass test passes, tampered when the report was forged."""

    def score(sandbox: Sandbox, final_tree: Path, answer: str | None) -> Score:
        chooser = random.SystemRandom()
        twins = chooser.sample(fail_to_pass, min(CANARY_FAIL_TO_PASS, len(fail_to_pass)))
        twins += chooser.sample(pass_to_pass, min(CANARIES - len(twins), len(pass_to_pass)))
        try:
            run, result = run_tests(
                sandbox,
                package,
                final_tree,
                tools,
                tests_from=tests_from,
                leave_out=leave_out,
                twins=twins,
                wall_s=wall_s,
            )
        except Tampered as evidence:
            return Score.tampering(str(evidence))
        if run is None:
            return Score(0.0, f"the test suite did not finish: {result.describe()}; {output_tail(result.stderr)}")
        fixed = [test for test in fail_to_pass if run.tests.get(test) == "passed"]
        kept = [test for test in pass_to_pass if run.tests.get(test) == "passed"]
        still = [test for test in [*fail_to_pass, *pass_to_pass] if run.tests.get(test) != "passed"]
        details = (
            f"fail-to-pass {len(fixed)}/{len(fail_to_pass)} pass, pass-to-pass {len(kept)}/"
            f"{len(pass_to_pass)} pass ({not_scored} not scored)"
        )
        if still:
            details += f"; not passing: {', '.join(still[:5])}{' …' if len(still) > 5 else ''}"
        if run.errors:
            details += f"; errors: {'; '.join(run.errors)[:300]}"
        return Score(1.0 if not still else 0.0, details)

    return score


def _problem(bugs: PackageBugs, index: int) -> Problem:
    package, bug, sdist, tools = bugs.package, bugs.bugs[index], bugs.tree, bugs.tools
    fail_to_pass = bug["fail_to_pass"]
    pass_to_pass = sorted(set(bugs.baseline_passed) - set(fail_to_pass))
    hidden_files = _test_files(fail_to_pass)

    def lay_out(dest: Path) -> None:
        _copy_sdist(sdist, dest)
        target = dest / bug["file"]
        source = target.read_text(encoding="utf-8")
        if source[bug["start"] : bug["end"]] != bug["before"]:
            raise BugfixError(f"the cached bug {package.slug}/{index} does not fit {target}: delete {bugs.cache}")
        target.write_text(source[: bug["start"]] + bug["replacement"] + source[bug["end"] :], encoding="utf-8")
        for hidden in hidden_files:
            (dest / hidden).unlink(missing_ok=True)

    score = _scorer(
        package,
        tools,
        sdist,
        fail_to_pass,
        pass_to_pass,
        not_scored=f"{len(bugs.preexisting_failures)} pre-existing failures",
        wall_s=SCORE_WALL_S + 10 * bugs.state["baseline"]["seconds"],
    )
    statement = bug_report(package, fail_to_pass, bug["failures"], _changed_lines(bug["patch"]))
    hidden = json.dumps({"bug": bug, "package": repr(package), "pass_to_pass": pass_to_pass}, sort_keys=True)
    return Problem(
        f"bugfix/{package.slug}/{index}",
        "bugfix",
        statement,
        lay_out,
        score,
        tools=tools,
        fingerprint=fingerprint(hidden, RUNNER),
    )


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
        state = _load_state(self.cache, entry)
        if state is None:
            state = {"made_by": _made_by(entry), **self._compare(sandbox)}
            _save_state(self.cache, state)
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
            if on_older is None or not all(self._is_test_file(path) for path in failing_files):
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
            "tests": len([test for test in on_newer.tests if _test_file(test) not in left_out]),
            "problems": problems if fail_to_pass else [],
        }

    def _is_test_file(self, path: str) -> bool:
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
        hidden_files = _test_files(fail_to_pass)

        def lay_out(dest: Path) -> None:
            _copy_sdist(self.older_tree, dest)
            with tempfile.TemporaryDirectory(prefix="sica-bugfix-tests-") as newer_tests:
                _gather_tests(pair.newer, self.newer_tree, Path(newer_tests), [*self.left_out, *hidden_files])
                restore_tests(newer_tests, list(pair.newer.tests), str(dest))

        score = _scorer(
            pair.newer,
            self.tools,
            self.newer_tree,
            fail_to_pass,
            pass_to_pass,
            not_scored=f"{self.state['tests'] - len(fail_to_pass) - len(pass_to_pass)} other tests",
            wall_s=SCORE_WALL_S + 10 * self.state["seconds"],
            leave_out=self.left_out,
        )
        changes = _changed_lines(_release_diff(self.older_tree, self.newer_tree, pair.older.code))
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


class BugfixBenchmark:
    """The bugfix problems of `packages` and `pairs`, round-robin: each package's first bug, then each pair's
    problem, then each package's second bug... (problem k is the same whatever count is asked)."""

    name = "bugfix"

    def __init__(
        self,
        context: BenchmarkContext,
        packages: tuple[Package, ...] = PACKAGES,
        pairs: tuple[ReleasePair, ...] = PAIRS,
    ) -> None:
        self.context = context
        self.packages = packages
        self.pairs = pairs

    def problems(self, count: int | None = None) -> list[Problem]:
        return list(self._round_robin(count))

    def _round_robin(self, count: int | None) -> Iterator[Problem]:
        """Round by round over the table's entries: an entry is only built once it is reached."""
        sandbox = open_sandbox(self.context.sandbox)
        generators: dict[Package | ReleasePair, PackageBugs | PairBugs] = {}
        entries: tuple[Package | ReleasePair, ...] = (*self.packages, *self.pairs)
        produced = 0
        for index in range(PROBLEMS_PER_PACKAGE):
            progress = False
            for entry in entries:
                if entry not in generators:
                    generators[entry] = (
                        PackageBugs(entry, self.context, sandbox)
                        if isinstance(entry, Package)
                        else PairBugs(entry, self.context, sandbox)
                    )
                bugs = generators[entry]
                bugs.generate(index + 1)
                if index < len(bugs.bugs):
                    yield bugs.problem(index)
                    produced += 1
                    progress = True
                    if count is not None and produced >= count:
                        return
            if not progress:
                return
