"""Confidence intervals for mean scores: Student's t interval, the usual choice for the small samples an
evaluation has (a few to a few hundred problems)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Two-sided 95% critical values of Student's t for 1..30 degrees of freedom; beyond that, the normal's 1.96.
_T95 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


@dataclass(frozen=True)
class MeanInterval:
    """A sample mean and the half-width of its 95% confidence interval (None with fewer than two values)."""

    mean: float
    half_width: float | None
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f}" + (f" ± {self.half_width:.3f}" if self.half_width is not None else "")


def mean_interval(values: Sequence[float]) -> MeanInterval:
    """The mean of `values` with its 95% Student's t confidence interval."""
    n = len(values)
    if n == 0:
        return MeanInterval(float("nan"), None, 0)
    mean = sum(values) / n
    if n == 1:
        return MeanInterval(mean, None, 1)
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    t = _T95[n - 2] if n - 1 <= len(_T95) else 1.96
    return MeanInterval(mean, t * math.sqrt(variance / n), n)
