"""Runs a package's own tests with pytest, inside the sandbox, and prints one JSON line on stdout: each test's
outcome, the first line of each failure and the test line that raised it, collection errors, and (when asked)
the lines of the package the tests ran. pytest's own output goes to stderr, so stdout holds the report alone.

Run as a script by the problem environment's Python (`python pytest_report.py --tree T TESTPATH...`): it imports
nothing of sica, and only pytest and coverage from its environment."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any

#: A test's outcome over its phases (setup, call, teardown) is the worst of them.
_RANK = {"passed": 0, "skipped": 1, "failed": 2}


class Outcomes:
    """A pytest plugin that records what the report needs."""

    def __init__(self) -> None:
        self.tests: dict[str, str] = {}
        self.failures: dict[str, dict[str, str]] = {}
        self.errors: list[str] = []

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.errors.append(f"{report.nodeid or 'collection'}: {_crash(report)}")

    def pytest_runtest_logreport(self, report: Any) -> None:
        outcome = "failed" if report.failed else "skipped" if report.skipped else "passed"
        if _RANK[outcome] >= _RANK[self.tests.get(report.nodeid, "passed")]:
            self.tests[report.nodeid] = outcome
        if report.failed and report.nodeid not in self.failures:
            self.failures[report.nodeid] = {"message": _crash(report), "line": _raising_line(report)}


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
            return line[1:].strip()[:300]
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", required=True, help="the package's source tree (becomes the working folder)")
    parser.add_argument("--source", default=".", help="the folder of the tree that is put on sys.path")
    parser.add_argument("--cover", help="report the lines run of the files under this folder of the tree")
    parser.add_argument("--tests-from", help="first restore the tree's tests and test configuration from this "
                        "folder: every conftest.py goes, then each of its files is copied to the same path")
    parser.add_argument("tests", nargs="+", help="test files and folders, relative to the tree")
    args = parser.parse_args()
    # Imported before the tree is on sys.path: a `pytest.py` or `coverage.py` in it cannot stand in for them.
    import coverage as coverage_module
    import pytest

    report = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # pytest, and whatever the tests print, go to stderr
    os.chdir(args.tree)
    if args.tests_from:
        restore_tests(args.tests_from, args.tests)
    sys.path.insert(0, os.path.abspath(args.source))
    coverage = None
    if args.cover:
        coverage = coverage_module.Coverage(data_file=None, config_file=False,
                                            include=[os.path.abspath(args.cover) + "/*"])
        coverage.start()

    outcomes = Outcomes()
    pytest.main(["-q", "-p", "no:cacheprovider", "--rootdir", os.getcwd(), *args.tests], plugins=[outcomes])
    covered: dict[str, list[int]] = {}
    if coverage is not None:
        coverage.stop()
        data = coverage.get_data()
        covered = {os.path.relpath(name): sorted(data.lines(name) or ()) for name in data.measured_files()}
    json.dump({"tests": outcomes.tests, "failures": outcomes.failures,
               "errors": outcomes.errors, "covered": covered}, report)
    report.write("\n")
    report.close()


def restore_tests(originals: str, tests: list[str], root: str = ".") -> None:
    """Put the original tests and test configuration back into the tree at `root`: the test paths are replaced
    whole, every `conftest.py` of the tree is removed (a new one could rewrite results), then each original file
    is copied. (The bugfix generator lays out release pairs' trees with it too.)"""
    for path in (os.path.join(root, test) for test in tests):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)
    for folder, folders, files in os.walk(root):
        if "conftest.py" in files:
            os.remove(os.path.join(folder, "conftest.py"))
    for folder, folders, files in os.walk(originals):
        for name in files:
            target = os.path.join(root, os.path.relpath(os.path.join(folder, name), originals))
            if os.path.lexists(target) and not os.path.isdir(target):
                os.remove(target)
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            shutil.copy(os.path.join(folder, name), target)


if __name__ == "__main__":
    main()
