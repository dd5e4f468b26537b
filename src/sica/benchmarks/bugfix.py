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

Generation is slow (a test run per try), so each package's progress is cached as JSON under
`cache_dir/bugfix/` (keyed by `GENERATOR`) and resumed; problems come round-robin over the packages, so the k-th
problem is the same whatever count is asked."""

from __future__ import annotations

import difflib
import functools
import json
import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sica.benchmarks.base import (BenchmarkContext, BenchmarkError, Problem, Score, fingerprint, output_tail,
                                 run_checks)
from sica.benchmarks.environments import TEST_RUNNER, problem_environment
from sica.benchmarks.mutations import Mutation, find_mutations
from sica.benchmarks.sdists import fetch_sdist
from sica.sandbox import Sandbox, SandboxResult, open_sandbox

#: Bump when generation changes: problem sets cached by another generator are not reused.
GENERATOR = 1
PROBLEMS_PER_PACKAGE = 20
RUNNER = Path(__file__).with_name("pytest_report.py")
#: Root files that may configure pytest; scoring restores the originals.
TEST_CONFIGURATION = ("pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml", ".pytest.ini")
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


def run_tests(sandbox: Sandbox, package: Package, tree: Path, tools: Path, *, cover: bool = False,
              tests_from: Path | None = None, wall_s: float = 300.0) -> tuple[TestRun | None, SandboxResult]:
    """Run the package's tests on a copy of `tree` in the sandbox (restoring the test paths from `tests_from`
    first, when given); the report is None when the run did not finish with one."""
    with tempfile.TemporaryDirectory(prefix="sica-bugfix-") as hidden:
        Path(hidden).chmod(0o755)
        runner = Path(hidden) / RUNNER.name
        shutil.copy(RUNNER, runner)
        runner.chmod(0o644)
        restore: list[str] = []
        if tests_from is not None:
            originals = Path(hidden) / "tests"
            originals.mkdir(mode=0o755)
            for path in package.tests:
                _copy_path(tests_from / path, originals / path)
            for config in _test_configuration(tests_from):
                _copy_path(tests_from / config, originals / config)
            restore = ["--tests-from", str(originals)]

        def command(inside: Path) -> tuple[str, ...]:
            return ("python", str(runner), "--tree", str(inside), "--source", package.source,
                    *(["--cover", package.code] if cover else []), *restore, *package.tests)

        result = run_checks(sandbox, tree, Path(hidden), command, tools=tools, wall_s=wall_s)
    lines = result.stdout.strip().splitlines()
    if result.ending != "exit" or not lines:
        return None, result
    try:
        report = json.loads(lines[-1])
        return TestRun(report["tests"], report["failures"], report["errors"], report["covered"],
                       result.seconds), result
    except (ValueError, KeyError, TypeError):
        return None, result


def _test_configuration(sdist: Path) -> list[str]:
    """What configures pytest in a package's tree: its `conftest.py` files and root configuration files."""
    conftests = [str(path.relative_to(sdist)) for path in sdist.rglob("conftest.py")]
    roots = [name for name in TEST_CONFIGURATION if (sdist / name).is_file()]
    return sorted({*conftests, *roots})


def _copy_path(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, dest, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy(source, dest)


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
        return self.state["bugs"]

    @property
    def baseline_passed(self) -> list[str]:
        return self.state["baseline"]["passed"]

    @property
    def preexisting_failures(self) -> list[str]:
        return self.state["baseline"]["not_passing"]

    def _load(self) -> dict[str, Any]:
        # The cached bugs belong to this generator, this package entry and this test environment only.
        made_by = {"generator": GENERATOR, "package": repr(self.package), "runner": list(TEST_RUNNER)}
        try:
            state = json.loads(self.cache.read_text(encoding="utf-8"))
            if state.get("made_by") == made_by:
                return state
        except (OSError, ValueError):
            pass
        return {"made_by": made_by, "baseline": self._baseline(), "tried": 0, "bugs": []}

    def _baseline(self) -> dict[str, Any]:
        self.context.on_progress(f"{self.package.name}: running its test suite")
        run, result = run_tests(self.sandbox, self.package, self.tree, self.tools, cover=True)
        if run is None or run.errors or not run.passed:
            detail = "; ".join(run.errors)[:300] if run else f"{result.describe()}: {output_tail(result.stderr)}"
            raise BugfixError(f"the test suite of {self.package.requirement} does not run in its environment "
                              f"({detail or 'no test passed'}): fix its entry in the bugfix package table")
        return {"passed": run.passed, "not_passing": sorted(set(run.tests) - set(run.passed)),
                "seconds": run.seconds, "covered": run.covered}

    def _save(self) -> None:
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        partial = self.cache.with_name(f".{self.cache.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(self.state, indent=1), encoding="utf-8")
        os.replace(partial, self.cache)

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
            self._save()
            self.context.on_progress(f"{self.package.name}: {self.state['tried']}/{len(candidates)} mutations "
                                     f"tried, {len(self.bugs)} kept")

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
        patch = "".join(difflib.unified_diff(original.splitlines(keepends=True), mutated.splitlines(keepends=True),
                                             f"a/{path}", f"b/{path}"))
        return {"file": path, "operator": mutation.operator, "function": mutation.function, "line": mutation.line,
                "start": mutation.start, "end": mutation.end, "before": original[mutation.start:mutation.end],
                "replacement": mutation.replacement, "patch": patch, "fail_to_pass": broken,
                "failures": {test: run.failures.get(test, {}) for test in broken[:SHOWN_FAILURES]}}


def _changed_lines(patch: str) -> set[str]:
    """The code lines a patch removes or adds (stripped): what a statement must never quote."""
    return {line[1:].strip() for line in patch.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---")) and line[1:].strip()}


def bug_report(package: Package, failing: list[str], failures: dict[str, dict[str, str]],
               never_quote: set[str]) -> str:
    """An issue-style statement from the failing tests alone; a test whose details would quote `never_quote`
    code is named without them."""
    count, fail = (f"{len(failing)} tests", "fail") if len(failing) > 1 else ("1 test", "fails")
    lines = [f"# {package.name} {package.version}: {count} of its own test suite {fail}", "",
             f"In this checkout of {package.name}, {count} that should pass {fail}:", ""]
    for test in failing[:SHOWN_FAILURES]:
        detail = failures.get(test, {})
        quoted = [text for text in (detail.get("line", ""), detail.get("message", "")) if text]
        if any(code in text for code in never_quote for text in quoted):
            quoted = []
        lines += [f"- `{test}`", *(f"      {text}" for text in quoted)]
    if len(failing) > SHOWN_FAILURES:
        lines.append(f"- and {len(failing) - SHOWN_FAILURES} more")
    path = " (with `src` on PYTHONPATH)" if package.source == "src" else ""
    lines += ["", "Find the bug in the package's code and fix it: these tests must pass and the rest of the suite "
              "must keep passing. The test files holding these tests are not in your tree; they are put back, "
              "unchanged, with every other test file when your fix is checked, so change the code, not the tests. "
              "pytest and the package's test dependencies are on PATH; the package itself is not installed: its "
              f"source is this tree, and `python -m pytest` run from the tree's root{path} imports it from there."]
    return "\n".join(lines) + "\n"


def _copy_sdist(sdist: Path, dest: Path) -> None:
    shutil.copytree(sdist, dest, symlinks=True, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".complete"))


def _problem(bugs: PackageBugs, index: int) -> Problem:
    package, bug, sdist, tools = bugs.package, bugs.bugs[index], bugs.tree, bugs.tools
    fail_to_pass = bug["fail_to_pass"]
    pass_to_pass = sorted(set(bugs.baseline_passed) - set(fail_to_pass))
    hidden_files = sorted({test.split("::")[0] for test in fail_to_pass})

    def lay_out(dest: Path) -> None:
        _copy_sdist(sdist, dest)
        target = dest / bug["file"]
        source = target.read_text(encoding="utf-8")
        if source[bug["start"]:bug["end"]] != bug["before"]:
            raise BugfixError(f"the cached bug {package.slug}/{index} does not fit {target}: delete {bugs.cache}")
        target.write_text(source[:bug["start"]] + bug["replacement"] + source[bug["end"]:], encoding="utf-8")
        for hidden in hidden_files:
            (dest / hidden).unlink(missing_ok=True)

    def score(sandbox: Sandbox, final_tree: Path, answer: str | None) -> Score:
        wall_s = SCORE_WALL_S + 10 * bugs.state["baseline"]["seconds"]
        run, result = run_tests(sandbox, package, final_tree, tools, tests_from=sdist, wall_s=wall_s)
        if run is None:
            return Score(0.0, f"the test suite did not finish: {result.describe()}; {output_tail(result.stderr)}")
        fixed = [test for test in fail_to_pass if run.tests.get(test) == "passed"]
        kept = [test for test in pass_to_pass if run.tests.get(test) == "passed"]
        still = [test for test in [*fail_to_pass, *pass_to_pass] if run.tests.get(test) != "passed"]
        details = (f"fail-to-pass {len(fixed)}/{len(fail_to_pass)} pass, pass-to-pass {len(kept)}/"
                   f"{len(pass_to_pass)} pass ({len(bugs.preexisting_failures)} pre-existing failures not scored)")
        if still:
            details += f"; not passing: {', '.join(still[:5])}{' …' if len(still) > 5 else ''}"
        if run.errors:
            details += f"; errors: {'; '.join(run.errors)[:300]}"
        return Score(1.0 if not still else 0.0, details)

    statement = bug_report(package, fail_to_pass, bug["failures"], _changed_lines(bug["patch"]))
    hidden = json.dumps({"bug": bug, "package": repr(package), "pass_to_pass": pass_to_pass}, sort_keys=True)
    return Problem(f"bugfix/{package.slug}/{index}", "bugfix", statement, lay_out, score, tools=tools,
                   fingerprint=fingerprint(hidden, RUNNER))


class BugfixBenchmark:
    """The bugfix problems of `packages`, round-robin (problem k is the same whatever count is asked)."""

    name = "bugfix"

    def __init__(self, context: BenchmarkContext, packages: tuple[Package, ...] = PACKAGES) -> None:
        self.context = context
        self.packages = packages

    def problems(self, count: int | None = None) -> list[Problem]:
        return list(self._round_robin(count))

    def _round_robin(self, count: int | None) -> Iterator[Problem]:
        """Each package's first bug, then each one's second, ...: a package is only built once it is reached."""
        sandbox = open_sandbox(self.context.sandbox)
        generators: dict[Package, PackageBugs] = {}
        produced = 0
        for index in range(PROBLEMS_PER_PACKAGE):
            progress = False
            for package in self.packages:
                if package not in generators:
                    generators[package] = PackageBugs(package, self.context, sandbox)
                bugs = generators[package]
                bugs.generate(index + 1)
                if index < len(bugs.bugs):
                    yield _problem(bugs, index)
                    produced += 1
                    progress = True
                    if count is not None and produced >= count:
                        return
            if not progress:
                return
