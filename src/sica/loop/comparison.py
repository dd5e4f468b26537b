"""Comparing versions like with like, and the one definition of the run's best version.

Versions are evaluated on different problems: a new version solves the selection mix in stages and stops early
when it is provably worse, and an infrastructure failure leaves a problem unscored. A mean over whatever a version
ran would compare it on other problems than the versions it is ranked against, so every comparison here is on the same
problems for both, with paired statistics (the per-problem differences, their mean and its 95% Student's t
interval), and:

**The best version** is, among the valid versions never caught tampering that were run on the whole selection mix
(every problem agent 0 was run on), the one with the highest mean utility over the mix; on a tie, the earlier one
(a challenger must do better to take the place). A problem such a version was run on but not scored (an
infrastructure failure) counts 0 there: the harness cannot rule out that a version provoked it, and a failure
left out for everyone would drop the problems it does worst on from every comparison. A version evaluated on
part of the mix is never the best, however well it did there. `sica improve`'s policies, `--agent best`, the
report and the viewer all use `best_version`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sica.runner.stats import mean_interval


@dataclass(frozen=True)
class Standing:
    """What selection knows of a valid version: its parent, its per-problem selection utilities and scores (scored
    problems only, each the mean over its repeats), the selection problems it was run on (infrastructure failures
    included), how many versions were made from it, and how many of its attempts tampered with a scorer."""

    number: int
    parent: int | None
    utilities: Mapping[str, float]
    scores: Mapping[str, float]
    attempted: frozenset[str] = field(default_factory=frozenset)
    children: int = 0
    tampered: int = 0

    @property
    def utility(self) -> float | None:
        """The mean utility over the problems it scored (for display: compare versions with `paired_difference`)."""
        return math.fsum(self.utilities.values()) / len(self.utilities) if self.utilities else None

    def complete(self, mix: frozenset[str]) -> bool:
        """Whether it was run on every problem of the selection mix."""
        return bool(mix) and mix <= self.attempted

    def on_mix(self, mix: frozenset[str]) -> dict[str, float]:
        """Its utilities on every problem of `mix` (the selection mix, or those it attempted), one it did not score
        (an infrastructure failure, which a version may provoke) counting 0."""
        return {problem: self.utilities.get(problem, 0.0) for problem in mix}

    def counted_scores(self) -> list[float]:
        """Its scores on every problem it attempted, one it did not score counting 0 (a failure)."""
        return [self.scores.get(problem, 0.0) for problem in sorted(self.attempted | self.scores.keys())]


@dataclass(frozen=True)
class PairedDifference:
    """`a − b` over the `n` problems both scored: the mean per-problem difference and its 95% interval's half-width
    (None with fewer than two shared problems, when nothing is provable)."""

    mean: float
    half_width: float | None
    n: int

    @property
    def lower(self) -> float:
        return -math.inf if self.half_width is None else self.mean - self.half_width

    @property
    def upper(self) -> float:
        return math.inf if self.half_width is None else self.mean + self.half_width

    @property
    def better(self) -> bool:
        """`a` is provably better: the whole interval is above zero."""
        return self.lower > 0

    @property
    def worse(self) -> bool:
        """`a` is provably worse: the whole interval is below zero."""
        return self.upper < 0

    def close(self, margin: float) -> bool:
        """`a` came close to `b`: not provably better or worse, and its mean difference above `−margin`."""
        return not self.better and not self.worse and self.mean > -margin

    def __str__(self) -> str:
        spread = f" ± {self.half_width:.3f}" if self.half_width is not None else ""
        return f"{self.mean:+.3f}{spread} on {self.n} shared problems"


def paired_difference(a: Mapping[str, float], b: Mapping[str, float]) -> PairedDifference:
    """`a − b` per problem, over the problems both have (no shared problem: a mean of 0 over none)."""
    differences = [a[problem] - b[problem] for problem in sorted(a.keys() & b.keys())]
    if not differences:
        return PairedDifference(0.0, None, 0)
    interval = mean_interval(differences)
    return PairedDifference(interval.mean, interval.half_width, interval.n)


def eligible(standings: Sequence[Standing], mix: frozenset[str]) -> list[Standing]:
    """The versions that may be the best: run on the whole mix, never caught tampering."""
    return [s for s in standings if s.complete(mix) and not s.tampered]


def best_version(standings: Sequence[Standing], mix: frozenset[str]) -> Standing | None:
    """The run's best version (the module's definition); None when no version is eligible yet."""

    def mean_on_mix(s: Standing) -> float:
        return math.fsum(s.on_mix(mix).values()) / len(mix)  # exact: equal means tie, in any order

    return max(eligible(standings, mix), key=lambda s: (mean_on_mix(s), -s.number), default=None)


def estimated_utility(standing: Standing, reference: Standing) -> float:
    """`standing`'s utility on the reference's problems, estimated like for like: the reference's mean plus the
    mean paired difference on the problems both scored (a version run on a subset is neither flattered by easy
    problems nor punished by hard ones)."""
    reference_mean = reference.utility or 0.0
    if standing.number == reference.number:
        return reference_mean
    difference = paired_difference(standing.on_mix(standing.attempted), reference.on_mix(reference.attempted))
    return reference_mean + difference.mean if difference.n else reference_mean


@dataclass(frozen=True)
class Acceptance:
    """A version that took the best's place from `previous` (None for the first best), and whether it also did
    better than `previous` on the held-out problems both scored (None when they share none)."""

    version: int
    previous: int | None
    better_on_holdout: bool | None


def acceptances(
    standings: Sequence[Standing], holdout: Mapping[int, Mapping[str, float]], mix: frozenset[str]
) -> list[Acceptance]:
    """Each time the best changed as the versions came (in number order), and whether the new best did better on
    the held-out problems (`holdout`: per version, per-problem held-out utilities) than the one it replaced."""
    found: list[Acceptance] = []
    current: Standing | None = None
    ordered = sorted(standings, key=lambda s: s.number)
    for index in range(len(ordered)):
        best = best_version(ordered[: index + 1], mix)
        if best is None or (current is not None and best.number == current.number):
            continue
        verdict = None
        if current is not None:
            difference = paired_difference(holdout.get(best.number, {}), holdout.get(current.number, {}))
            verdict = difference.mean > 0 if difference.n else None
        found.append(Acceptance(best.number, current.number if current else None, verdict))
        current = best
    return found
