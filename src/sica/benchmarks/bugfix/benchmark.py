"""The benchmark: the problems of the package and release-pair tables, round-robin."""

from __future__ import annotations

from collections.abc import Iterator

from sica.benchmarks.base import BenchmarkContext, Problem
from sica.benchmarks.bugfix import PACKAGES, PAIRS, Package, ReleasePair
from sica.benchmarks.bugfix.mutation_bugs import PROBLEMS_PER_PACKAGE, PackageBugs
from sica.benchmarks.bugfix.release_bugs import PairBugs
from sica.sandbox import open_sandbox


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
