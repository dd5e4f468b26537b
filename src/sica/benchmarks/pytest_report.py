"""The trusted pytest runner, run inside the sandbox by the problem environment's Python as `python -I -B
pytest_report.py --tree T TESTPATH...`: it imports nothing of sica, only pytest and coverage, and prints on stdout
a start line, then one signed JSON report line: each test's outcome, the first line of each failure and the test
line that raised it, collection errors, the outcomes of the canary tests and (when asked) the lines of the
package the tests ran. pytest's own output goes to stderr. Task folders' checks call it as `sica-pytest`
(`--summary`), which adds a verdict, a `score:` line and an exit status.

The code under test runs in this process, so the run is built to keep the tree from deciding it:
- isolation: `-I -B` (no environment variables, user site or script folder; no bytecode written); pytest,
  coverage and the environment's own pytest plugins are imported before the tree is on `sys.path`, which it
  joins last (`--import-mode=append`; `importlib` for tests outside the tree), plugin autoload is off (a
  `*.dist-info` of the tree cannot add a plugin) and so is the cache provider; the tree's bytecode caches are
  removed (a planted `.pyc` cannot stand in for a restored test); for tests of the tree, the original tests and
  pytest configuration are put back first (every `conftest.py` and configuration file of the tree on the way to
  them removed), and for tests outside it, its conftest and configuration files are never looked at.
- secrets: the harness gives a nonce and the canaries' seed on standard input, read whole and closed before any
  code of the tree runs; the report is signed with the nonce (HMAC), which is never printed.
- canaries: copies of real tests (same node id, same fixtures, run among their own module's or class's tests)
  that run the real test and then fail whatever it did: a canary reported as passing proves the report was
  rewritten. The harness checks all of this (`sica.benchmarks.canaries`); what the code under test could still
  do, knowing this runner, is read its memory: canaries catch blind tampering, not a targeted forgery.

One module, over 400 lines, because it is one script: it is copied on its own into a folder the sandbox mounts
(a problem's hidden files, or the folder of `sica-pytest`), runs there with `python -I` (its own folder is not on
`sys.path`, so it can import no sibling), and its bytes are part of the fingerprint of every problem it scores.
The harness imports the same file for its report markers, `summary_verdict` and `restore_tests`, so both sides of
the report share one definition."""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import hmac
import inspect
import json
import os
import random
import shutil
import sys
from typing import Any

#: A test's outcome over its phases (setup, call, teardown) is the worst of them.
_RANK = {"passed": 0, "skipped": 1, "failed": 2}
#: Root files that may configure pytest (in the order pytest prefers them).
CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
#: The prefixes of the runner's two stdout lines the harness reads, and the signature of a run without secrets.
START, REPORT = "sica-pytest-start ", "sica-pytest-report "
UNSIGNED = "-"


def sign(nonce: str, body: str) -> str:
    """The report's signature: an HMAC of its text keyed by the harness's nonce."""
    return hmac.new(nonce.encode(), body.encode(), hashlib.sha256).hexdigest()


class Outcomes:
    """A pytest plugin that records what the report needs, by test item (a canary shares its twin's node id),
    from the report pytest made for each phase, and inserts the canaries after every other plugin's changes to
    the collected items."""

    def __init__(self, secrets: dict[str, Any], prefer: list[str]) -> None:
        self.secrets = secrets
        self.prefer = prefer
        self.tests: dict[str, str] = {}
        self.failures: dict[str, dict[str, str]] = {}
        self.errors: list[str] = []
        self.canaries: dict[int, dict[str, Any]] = {}
        self.collected = 0
        self.candidates = 0

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.errors.append(f"{report.nodeid or 'collection'}: {_crash(report)}")

    def pytest_collection_modifyitems(self, session: Any, config: Any, items: list[Any]) -> None:
        self.collected = len(items)
        candidates = [item for item in items if _can_twin(item)]
        self.candidates = len(candidates)
        wanted = min(int(self.secrets.get("canaries", 0)), len(candidates))
        if not wanted:
            return
        rng = random.Random(self.secrets.get("seed", 0))
        by_id = {item.nodeid: item for item in reversed(candidates)}
        twins = [by_id[twin] for twin in dict.fromkeys(self.secrets.get("twins", [])) if twin in by_id][:wanted]
        rest = [item for item in candidates if item not in twins]
        preferred = [item for item in rest if any(_under(item.nodeid, path) for path in self.prefer)]
        others = [item for item in rest if item not in preferred]
        for pool in (preferred, others):
            twins += rng.sample(pool, min(len(pool), wanted - len(twins)))
        for twin in twins:
            canary = _canary(twin)
            self.canaries[id(canary)] = {"twin": twin.nodeid, "outcome": None}
            group = [index for index, item in enumerate(items) if item.parent is twin.parent]
            items.insert(rng.randint(group[0], group[-1] + 1), canary)

    def pytest_runtest_makereport(self, item: Any, call: Any) -> Any:
        report = yield
        outcome = "failed" if report.failed else "skipped" if report.skipped else "passed"
        canary = self.canaries.get(id(item))
        if canary is not None:
            if canary["outcome"] is None or _RANK[outcome] > _RANK[canary["outcome"]]:
                canary["outcome"] = outcome
            return report
        if _RANK[outcome] >= _RANK[self.tests.get(item.nodeid, "passed")]:
            self.tests[item.nodeid] = outcome
        if report.failed and item.nodeid not in self.failures:
            self.failures[item.nodeid] = {"message": _crash(report), "line": _raising_line(report)}
        return report


def _under(nodeid: str, path: str) -> bool:
    """Whether a test's node id is of the test file or folder `path` (relative to the root, as node ids are)."""
    return nodeid == path or nodeid.startswith((path + "::", path + "/"))


def _mark_hooks(pytest: Any) -> None:
    """Mark the plugin's hooks for pytest (imported only in the sandbox: the harness imports this module too)."""
    pytest.hookimpl(trylast=True)(Outcomes.pytest_collection_modifyitems)
    pytest.hookimpl(wrapper=True, tryfirst=True)(Outcomes.pytest_runtest_makereport)


def _can_twin(item: Any) -> bool:
    """A plain test function or unittest method (not async): what a canary can copy."""
    import pytest
    from _pytest.unittest import TestCaseFunction

    return type(item) in (pytest.Function, TestCaseFunction) and not inspect.iscoroutinefunction(item.obj)


def _canary(twin: Any) -> Any:
    """A new item shaped as `twin` (its node id, parametrization, fixtures and markers) whose test function calls
    the real one and then fails, so that it fails as the real one does, or at its end when the real one passes."""
    import pytest
    from _pytest.unittest import TestCaseFunction

    canary: Any
    if type(twin) is TestCaseFunction:
        canary = TestCaseFunction.from_parent(twin.parent, name=twin.name)
    else:
        callspec = getattr(twin, "callspec", None)
        extra = {"callspec": callspec, "keywords": {callspec.id: True}} if callspec is not None else {}
        canary = pytest.Function.from_parent(
            twin.parent, name=twin.name, fixtureinfo=twin._fixtureinfo, originalname=twin.originalname, **extra
        )
    canary.own_markers = list(twin.own_markers)
    canary.keywords.update({mark.name: mark for mark in twin.own_markers})
    real = canary.obj

    @functools.wraps(real)
    def test(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        raise AssertionError("assert False")

    canary._obj = test
    return canary


def _crash(report: Any) -> str:
    """The first line of the exception a failed report ended with (e.g. `AssertionError: assert 1 == 2`)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    lines = text.strip().splitlines()
    return lines[0][:300] if lines else ""


def _raising_line(report: Any) -> str:
    """The statement of the test function's own frame that raised (the traceback's first entry's `>` line)."""
    entries = getattr(getattr(report.longrepr, "reprtraceback", None), "reprentries", None) or []
    for line in getattr(entries[0], "lines", []) if entries else []:
        if line.startswith(">"):
            return str(line[1:].strip()[:300])
    return ""


def _read_secrets() -> dict[str, Any]:
    """The harness's secrets from standard input, read whole; then standard input is /dev/null, so that code run
    later in this process cannot read them from it. (A terminal holds none: a check run by hand.)"""
    data = b"" if os.isatty(0) else sys.stdin.buffer.read()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    try:
        secrets = json.loads(data) if data.strip() else {}
    except ValueError:
        secrets = {}
    return secrets if isinstance(secrets, dict) and isinstance(secrets.get("nonce"), str) else {}


def _environment_plugins() -> list[Any]:
    """The pytest plugins the environment's own distributions declare, loaded before the tree is on sys.path
    (autoload is off: a distribution of the tree would be found too)."""
    from importlib.metadata import entry_points

    return [entry.load() for entry in entry_points(group="pytest11")]


def _forget_bytecode(root: str) -> None:
    """Remove every `__pycache__` of the tree: Python and pytest's assertion rewriter would load a planted one
    whose recorded source time and size match a restored file."""
    for folder, folders, _ in os.walk(root):
        for name in [name for name in folders if name == "__pycache__"]:
            path = os.path.join(folder, name)
            os.remove(path) if os.path.islink(path) else shutil.rmtree(path)
            folders.remove(name)


def _remove_shadows(tests: list[str], source: str) -> None:
    """Remove what would be imported instead of a restored test module: with `--import-mode=append` a module of
    the tree's source folder named as a test module (or its package) comes first on sys.path."""
    for test in tests:
        files = (
            [test]
            if os.path.isfile(test)
            else [
                os.path.join(folder, name)
                for folder, _, names in os.walk(test)
                for name in names
                if name.endswith(".py")
            ]
        )
        for path in files:
            folder, top = os.path.dirname(os.path.abspath(path)), os.path.basename(path)[:-3]
            while os.path.isfile(os.path.join(folder, "__init__.py")):
                folder, top = os.path.dirname(folder), os.path.basename(folder)
            if os.path.abspath(folder) == os.path.abspath(source):
                continue
            for shadow in (os.path.join(source, top + ".py"), os.path.join(source, top)):
                if any(os.path.abspath(shadow).startswith(os.path.abspath(t)) for t in tests):
                    continue
                if os.path.isdir(shadow) and not os.path.islink(shadow):
                    shutil.rmtree(shadow)
                elif os.path.lexists(shadow):
                    os.remove(shadow)


def expected_tests(paths: list[str], root: str) -> list[str]:
    """The tests the files of `paths` define, read from their source before any of it runs: `file::test_x` and
    `file::Class::test_x` (node ids relative to `root`); a parametrized test appears as `id[...]`."""
    files: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(
                os.path.join(folder, name)
                for folder, _, names in os.walk(path)
                for name in names
                if name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))
            )
        elif os.path.isfile(path):
            files.append(path)
    found = []
    for file in files:
        try:
            with open(file, encoding="utf-8") as handle:
                module = ast.parse(handle.read())
        except (OSError, SyntaxError, ValueError):
            continue
        relative = os.path.relpath(file, root)
        for node in module.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                found.append(f"{relative}::{node.name}")
            elif isinstance(node, ast.ClassDef) and (
                node.name.startswith("Test") or any(ast.unparse(base).endswith("TestCase") for base in node.bases)
            ):
                found += [
                    f"{relative}::{node.name}::{item.name}"
                    for item in node.body
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test")
                ]
    return found


def effective_outcomes(report: dict[str, Any]) -> dict[str, str]:
    """Each test's outcome, a test whose canary never ran counted as failed (its run was cut short)."""
    outcomes = dict(report["tests"])
    for canary in report["canaries"]:
        if canary["outcome"] is None:
            outcomes[canary["twin"]] = "failed"
    return outcomes


def summary_verdict(expected: dict[str, list[str]], report: dict[str, Any]) -> tuple[float, str]:
    """A task check's score from a verified report: 0 when a test file did not collect or a required test does
    not pass, else the share of the other (scored) tests that pass (1.0 when there are none). Tests are counted
    as the start line expected them (read from the test files before the tree ran), so a test left out of the
    run counts as failing; a group of which nothing was expected counts the tests reported."""
    outcomes = effective_outcomes(report)
    required = set(report.get("required", []))

    def entries(group: str) -> list[str]:
        listed = expected.get(group) or []
        return listed or sorted(test for test in outcomes if (test in required) == (group == "required"))

    def passes(entry: str) -> bool:
        matching = [o for test, o in outcomes.items() if test == entry or test.startswith(entry + "[")]
        return bool(matching) and all(outcome == "passed" for outcome in matching)

    kept, scored = entries("required"), entries("scored")
    failing = [entry for entry in [*kept, *scored] if not passes(entry)]
    shown = f"; not passing: {', '.join(failing[:5])}{' …' if len(failing) > 5 else ''}" if failing else ""
    if report["errors"]:
        return 0.0, f"sica-pytest: a test file did not collect ({'; '.join(report['errors'])[:300]}){shown}"
    if not kept and not scored:
        return 0.0, "sica-pytest: no test ran"
    kept_passing = sum(map(passes, kept))
    scored_passing = sum(map(passes, scored))
    counts = [
        f"{passing} of {len(group)} {name} tests pass"
        for name, group, passing in (("scored", scored, scored_passing), ("required", kept, kept_passing))
        if group
    ]
    text = f"sica-pytest: {', '.join(counts)}{shown}"
    if kept_passing < len(kept):
        return 0.0, text
    return (round(scored_passing / len(scored), 3) if scored else 1.0), text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", required=True, help="the tree under test (becomes the working folder)")
    parser.add_argument("--source", default=".", help="the folder of the tree that is put on sys.path (last)")
    parser.add_argument("--cover", help="report the lines run of the files under this folder of the tree")
    parser.add_argument(
        "--tests-from",
        help="first restore the tree's tests and test configuration from this folder (test paths relative to the tree)",
    )
    parser.add_argument(
        "--summary",
        action="store_true",
        help="sica-pytest: tests outside the tree (a task "
        "folder's), a verdict, a `score:` line and exit 0 iff every test passes",
    )
    parser.add_argument(
        "--required",
        action="append",
        default=[],
        metavar="TESTPATH",
        help="with --summary: tests that must all pass (else the score is 0)",
    )
    parser.add_argument("tests", nargs="*", help="test files and folders (scored)")
    args = parser.parse_args()
    secrets = _read_secrets()
    # Imported before the tree is on sys.path: a `pytest.py` or `coverage.py` in it cannot stand in for them.
    import coverage as coverage_module
    import pytest

    _mark_hooks(pytest)
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    plugins = _environment_plugins()
    report = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # pytest, and whatever the tests print, go to stderr
    tree = os.path.abspath(args.tree)
    tests = [os.path.abspath(path) for path in [*args.required, *args.tests]]
    if args.summary:
        inside = [path for path in tests if path == tree or path.startswith(tree + os.sep)]
        if inside or not tests:
            parser.error("test paths must be given, from the task folder, not from the tree under test")
        root = os.path.commonpath([path if os.path.isdir(path) else os.path.dirname(path) for path in tests])
        config = next(
            (os.path.join(root, name) for name in CONFIG_FILES if os.path.isfile(os.path.join(root, name))), os.devnull
        )
        options = ["--import-mode=importlib", "-c", config]
        expected = {
            "required": expected_tests([os.path.abspath(p) for p in args.required], root),
            "scored": expected_tests([os.path.abspath(p) for p in args.tests], root),
        }
        prefer = [os.path.relpath(os.path.abspath(path), root) for path in args.tests]
        required = [os.path.relpath(os.path.abspath(path), root) for path in args.required]
    else:
        root, options, expected, prefer, required = tree, ["--import-mode=append"], None, [], []
        tests = args.tests
    os.chdir(tree)
    if args.tests_from:
        restore_tests(args.tests_from, args.tests)
    _forget_bytecode(tree)
    if not args.summary:
        _remove_shadows(args.tests, args.source)
    report.write(START + json.dumps({"secrets": bool(secrets), "expected": expected}) + "\n")
    report.flush()
    sys.path.append(os.path.abspath(args.source))
    coverage = None
    if args.cover:
        coverage = coverage_module.Coverage(
            data_file=None, config_file=False, include=[os.path.abspath(args.cover) + "/*"]
        )
        coverage.start()

    outcomes = Outcomes(secrets, prefer)
    pytest.main(
        ["-q", "-p", "no:cacheprovider", *options, "--rootdir", root, "--confcutdir", root, *tests],
        plugins=[outcomes, *plugins],
    )
    covered: dict[str, list[int]] = {}
    if coverage is not None:
        coverage.stop()
        data = coverage.get_data()
        covered = {os.path.relpath(name): sorted(data.lines(name) or ()) for name in data.measured_files()}
    body = json.dumps(
        {
            "tests": outcomes.tests,
            "failures": outcomes.failures,
            "errors": outcomes.errors,
            "covered": covered,
            "collected": outcomes.collected,
            "candidates": outcomes.candidates,
            "canaries": list(outcomes.canaries.values()),
            "required": [test for test in outcomes.tests if any(_under(test, path) for path in required)],
        }
    )
    if args.summary:
        value, text = summary_verdict(expected or {}, json.loads(body))
        report.write(text + "\n")
    report.write(f"{REPORT}{sign(secrets['nonce'], body) if secrets else UNSIGNED} {body}\n")
    if args.summary:
        report.write(f"score: {value}\n")
    report.close()
    if args.summary:
        sys.exit(0 if value == 1.0 else 1)


def restore_tests(originals: str, tests: list[str], root: str = ".") -> None:
    """Put the original tests and test configuration back into the tree at `root`: the test paths are replaced
    whole, every `conftest.py` of the tree is removed, and so is every pytest configuration file at its root and
    in the folders between it and the test paths (a new one could load a plugin of the tree or rewrite results);
    then each original file is copied. (The bugfix generator lays out release pairs' trees with it too.)"""
    for path in (os.path.join(root, test) for test in tests):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)
    for folder, _folders, files in os.walk(root):
        if "conftest.py" in files:
            os.remove(os.path.join(folder, "conftest.py"))
    above = {
        os.path.join(root, *parts[:depth])
        for parts in (os.path.normpath(test).split(os.sep) for test in tests)
        for depth in range(len(parts))
    }
    for folder in above:
        for name in CONFIG_FILES:
            path = os.path.join(folder, name)
            if os.path.lexists(path) and not (os.path.isdir(path) and not os.path.islink(path)):
                os.remove(path)
    for folder, _folders, files in os.walk(originals):
        for name in files:
            target = os.path.join(root, os.path.relpath(os.path.join(folder, name), originals))
            if os.path.lexists(target) and not os.path.isdir(target):
                os.remove(target)
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            shutil.copy(os.path.join(folder, name), target)


if __name__ == "__main__":
    main()
