"""Staged evaluation as a sequential test: a new version solves growing, nested subsets of the selection mix
(`[loop] stages`, e.g. 5 → 15 → all) and, at each look before the whole mix, is compared with the best version on
the problems both have scored. It stops at a look where it is provably worse, so weak versions cost little; any
other version goes on to the whole mix, since only a version run on the whole mix can become the best
(`comparison`).

`sequential` looks with the paired 95% interval of the per-problem utility differences: provably worse when the
whole interval is below zero (with two interim looks the chance of stopping a version that is in truth as good
stays near 5%, since each look is one-sided at 2.5%). `dgm` is the Darwin Gödel Machine's rule: a version goes on
only when its mean score at the look reaches the stage's threshold (`DGM_THRESHOLDS`), whatever the best did."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sica.loop.comparison import paired_difference

T = TypeVar("T")

#: DGM's score a version needs at each look to go on (its paper: 10 tasks, then 50 more, then the rest of 200).
DGM_THRESHOLDS = (0.4, 0.4)


def spread(problems: Sequence[T], size: int) -> list[T]:
    """`size` problems spread evenly over `problems` (every benchmark represented when the mix is ordered by
    benchmark), the same ones for every version."""
    if size >= len(problems):
        return list(problems)
    step = len(problems) / size
    return [problems[int(index * step)] for index in range(size)]


def stages(mix: Sequence[T], sizes: Sequence[int]) -> list[list[T]]:
    """The problems evaluated by each look: nested (each stage holds the one before), `sizes` below the mix's size
    as given, and the whole mix last."""
    found: list[list[T]] = []
    chosen: list[T] = []
    for size in [s for s in sizes if s < len(mix)]:
        rest = [p for p in mix if p not in chosen]
        chosen = chosen + spread(rest, size - len(chosen))
        found.append([p for p in mix if p in chosen])
    return found + [list(mix)]


@dataclass(frozen=True)
class Look:
    """What a look decided: `stop` (evaluate no more) and why, in a phrase."""

    stop: bool
    reason: str


def sequential_look(candidate: Mapping[str, float], best: Mapping[str, float] | None, best_number: int) -> Look:
    """Stop when the candidate's per-problem utilities are provably worse than the best's on shared problems."""
    if best is None:
        return Look(False, "no best version to compare with yet")
    difference = paired_difference(candidate, best)
    if difference.worse:
        return Look(True, f"provably worse than agent-{best_number} ({difference})")
    return Look(False, f"against agent-{best_number}: {difference}")


def dgm_look(scores: Sequence[float], look: int) -> Look:
    """Stop when the candidate's mean score is below DGM's threshold of look `look` (0 for the first)."""
    threshold = DGM_THRESHOLDS[min(look, len(DGM_THRESHOLDS) - 1)]
    mean = sum(scores) / len(scores) if scores else 0.0
    verdict = "below" if mean < threshold else "at least"
    return Look(mean < threshold, f"mean score {mean:.3f} {verdict} DGM's threshold {threshold:.2f}")
