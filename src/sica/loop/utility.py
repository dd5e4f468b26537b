"""A version's utility, as the SICA paper defines it (weights and caps configurable in `[loop.utility]`):
per problem `U = w_score·score + w_cost·(1 − min(1, cost/cost_cap)) + w_time·(1 − min(1, time/time_cap))`, times
`timeout_factor` when the problem timed out, averaged over the version's scored problems."""

from __future__ import annotations

from collections.abc import Iterable

from sica.archive.run_db import ProblemOutcome
from sica.config import UtilitySettings


def problem_utility(outcome: ProblemOutcome, weights: UtilitySettings) -> float:
    """The utility of one problem's outcome."""
    cost_term = 1 - min(1.0, outcome.cost_usd / weights.cost_cap_usd)
    time_term = 1 - min(1.0, outcome.seconds / weights.time_cap_s)
    utility = weights.score_weight * outcome.score + weights.cost_weight * cost_term + weights.time_weight * time_term
    return utility * (weights.timeout_factor if outcome.status == "timeout" else 1.0)


def version_utility(outcomes: Iterable[ProblemOutcome], weights: UtilitySettings) -> float | None:
    """The mean utility over a version's problems; None when it has none."""
    values = [problem_utility(outcome, weights) for outcome in outcomes]
    return sum(values) / len(values) if values else None
