"""Running a package's test suite in the sandbox with the trusted runner (`pytest_report.py`), on a copy of a tree,
optionally with another release's test paths and test configuration put in place first and with canary tests among
them (when scoring); and the tree copies the generators and problems share."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from sica.benchmarks.base import run_checks
from sica.benchmarks.bugfix import Package
from sica.benchmarks.canaries import RunnerSecrets, read_runner_output
from sica.benchmarks.pytest_report import CONFIG_FILES, effective_outcomes
from sica.sandbox import Sandbox, SandboxResult

RUNNER = Path(__file__).parents[1] / "pytest_report.py"
#: Root files that may configure pytest; scoring restores the originals (and removes the tree's own).
TEST_CONFIGURATION = CONFIG_FILES
#: Canary tests in a scoring run: copies of fail-to-pass tests first (the ones a forger targets), then others.
CANARIES = 5


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
            gather_tests(package, tests_from, originals, leave_out)
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


def gather_tests(package: Package, sdist: Path, dest: Path, leave_out: Collection[str] = ()) -> None:
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


def copy_sdist(sdist: Path, dest: Path) -> None:
    shutil.copytree(sdist, dest, symlinks=True, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".complete"))


def file_of_test(test: str) -> str:
    """The file that holds a test (a pytest node id)."""
    return test.split("::")[0]


def files_of_tests(tests: list[str]) -> list[str]:
    return sorted({file_of_test(test) for test in tests})
