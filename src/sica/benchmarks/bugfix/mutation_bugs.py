"""A package's bugs: the generator fetches the sdist, builds the problem environment (pytest and the package's test
dependencies, not the package) and runs the suite once in the sandbox, with coverage: tests that do not pass then
are pre-existing failures, never scored. It then tries one-spot bugs (`mutations`) on covered lines, in a seeded
order, each in the sandbox under a wall limit, and keeps one when some previously passing tests now fail
(fail-to-pass) while every other one still passes (pass-to-pass); an import or collection error, a timeout or a
vanished test discards it. At most one bug per function, `PROBLEMS_PER_PACKAGE` per package."""

from __future__ import annotations

import difflib
import functools
import json
import random
import tempfile
from pathlib import Path
from typing import Any, cast

from sica.benchmarks.base import BenchmarkContext, Problem, fingerprint, output_tail
from sica.benchmarks.bugfix import BugfixError, Package
from sica.benchmarks.bugfix.cache import GENERATOR, load_state, made_by, save_state
from sica.benchmarks.bugfix.scoring import SCORE_WALL_S, scorer
from sica.benchmarks.bugfix.statements import SHOWN_FAILURES, bug_report, changed_lines
from sica.benchmarks.bugfix.suite import RUNNER, copy_sdist, files_of_tests, run_tests
from sica.benchmarks.environments import problem_environment
from sica.benchmarks.mutations import Mutation, find_mutations
from sica.benchmarks.sdists import fetch_sdist
from sica.sandbox import Sandbox

PROBLEMS_PER_PACKAGE = 20
#: The wall limit of a try: this plus ten times the baseline run's time (an endless loop ends).
TRY_WALL_S = 60.0


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
        return load_state(self.cache, entry) or {
            "made_by": made_by(entry),
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
            save_state(self.cache, self.state)
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
            copy_sdist(self.tree, tree)
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


def _problem(bugs: PackageBugs, index: int) -> Problem:
    package, bug, sdist, tools = bugs.package, bugs.bugs[index], bugs.tree, bugs.tools
    fail_to_pass = bug["fail_to_pass"]
    pass_to_pass = sorted(set(bugs.baseline_passed) - set(fail_to_pass))
    hidden_files = files_of_tests(fail_to_pass)

    def lay_out(dest: Path) -> None:
        copy_sdist(sdist, dest)
        target = dest / bug["file"]
        source = target.read_text(encoding="utf-8")
        if source[bug["start"] : bug["end"]] != bug["before"]:
            raise BugfixError(f"the cached bug {package.slug}/{index} does not fit {target}: delete {bugs.cache}")
        target.write_text(source[: bug["start"]] + bug["replacement"] + source[bug["end"] :], encoding="utf-8")
        for hidden in hidden_files:
            (dest / hidden).unlink(missing_ok=True)

    score = scorer(
        package,
        tools,
        sdist,
        fail_to_pass,
        pass_to_pass,
        not_scored=f"{len(bugs.preexisting_failures)} pre-existing failures",
        wall_s=SCORE_WALL_S + 10 * bugs.state["baseline"]["seconds"],
    )
    statement = bug_report(package, fail_to_pass, bug["failures"], changed_lines(bug["patch"]))
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
