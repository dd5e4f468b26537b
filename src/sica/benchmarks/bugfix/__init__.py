"""`bugfix`: SWE-style problems made from real packages' sdists and their own test suites.

The benchmark is the two pinned tables here: packages (`PACKAGES`), whose bugs are one-spot mutations that their own
tests find (`mutation_bugs`), and consecutive releases (`PAIRS`), whose bug is what the newer release's tests find
in the older one's source (`release_bugs`). Either way the statement is a bug report written from the failing tests,
never from the change (`statements`); the starting tree holds the bug and lacks the test files of the fail-to-pass
tests; the scorer puts every original test path back into a copy of the final tree and runs the suite in the
sandbox with the trusted runner (`suite`): solved (1.0) iff all fail-to-pass and pass-to-pass tests pass, else 0.0
(`scoring`). Generation is slow (a test run per try), so it is cached and resumed (`cache`); problems come
round-robin over the packages and then the pairs (`benchmark`), so the k-th problem is the same whatever count is
asked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sica.benchmarks.base import BenchmarkError


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
