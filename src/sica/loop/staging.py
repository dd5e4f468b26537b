"""Staged evaluation: a new version first solves a small, fixed subset of the selection problems; the rest are
run only when it is promising, so that weak versions cost little.

A version is promising when it cannot be told worse than the reference (the best version so far) on the same
first-stage problems: the upper end of its 95% confidence interval reaches the reference's mean there. With
fewer than two first-stage problems there is no interval, and only a mean at least the reference's passes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from sica.runner.stats import mean_interval

T = TypeVar("T")


def first_stage(problems: Sequence[T], size: int) -> list[T]:
    """The first stage: `size` problems spread evenly over the mix (every benchmark represented when the mix
    is ordered by benchmark), the same ones for every version."""
    if size >= len(problems):
        return list(problems)
    step = len(problems) / size
    return [problems[int(index * step)] for index in range(size)]


def promising(candidate: Mapping[str, float], reference: Mapping[str, float] | None) -> bool:
    """Whether to finish evaluating: per-problem utilities of the candidate's first stage, against the
    reference's on the same problems (None: no reference yet, so always)."""
    if reference is None:
        return True
    shared = sorted(set(candidate) & set(reference))
    if not shared:
        return True
    interval = mean_interval([candidate[problem] for problem in shared])
    reference_mean = sum(reference[problem] for problem in shared) / len(shared)
    return interval.mean + (interval.half_width or 0.0) >= reference_mean
