"""Utility and the selection policies, as functions of a hand-made archive."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from sica.config import UtilitySettings
from sica.loop.policies import (POLICIES, Selection, SelectionError, VersionStanding, dgm_policy, hgm_policy,
                                sica_policy)
from sica.loop.utility import problem_utility, version_utility

PAPER = UtilitySettings()


@dataclass(frozen=True)
class ProblemOutcome:
    score: float
    cost_usd: float
    seconds: float
    status: str = "done"


def test_problem_utility_is_the_papers_formula():
    # 0.5·1 + 0.25·(1 − 2/10) + 0.25·(1 − 60/300) = 0.5 + 0.2 + 0.2
    assert problem_utility(ProblemOutcome(1.0, 2.0, 60.0), PAPER) == pytest.approx(0.9)
    assert problem_utility(ProblemOutcome(1.0, 2.0, 60.0, "timeout"), PAPER) == pytest.approx(0.45)  # timed out: × 0.5
    assert problem_utility(ProblemOutcome(0.0, 50.0, 900.0), PAPER) == 0.0  # costs and times are capped
    heavy_score = UtilitySettings(score_weight=1.0, cost_weight=0.0, time_weight=0.0)
    assert problem_utility(ProblemOutcome(0.3, 5.0, 100.0), heavy_score) == pytest.approx(0.3)
    outcomes = [ProblemOutcome(1.0, 0.0, 0.0), ProblemOutcome(0.0, 10.0, 300.0)]
    assert version_utility(outcomes, PAPER) == pytest.approx(0.5) and version_utility([], PAPER) is None


def standing(number: int, parent: int | None, utilities: list[float], children: int = 0,
             scores: list[float] | None = None) -> VersionStanding:
    return VersionStanding(number, parent, tuple(utilities), tuple(scores if scores is not None else utilities),
                           children)


def test_sica_takes_the_best_as_meta_agent_and_the_newest_within_its_bound_as_base():
    archive = [standing(0, None, [0.5, 0.6, 0.7, 0.6], children=2),
               standing(1, 0, [0.9, 0.8, 0.7, 0.8], children=1),      # best: mean 0.8, wide interval
               standing(2, 1, [0.75, 0.7, 0.72, 0.73]),                 # mean 0.725: within the best's bound
               standing(3, 0, [0.1, 0.2, 0.1, 0.2])]                    # newest, but far below
    assert sica_policy(archive, random.Random(0)) == (selection := sica_policy(archive, random.Random(1)))
    assert (selection.meta_agent, selection.base) == (1, 2)
    only_best = [standing(0, None, [0.2, 0.2]), standing(1, 0, [0.9, 0.9])]
    assert (sica_policy(only_best, random.Random(0)).base) == 1


def test_dgm_favours_good_and_little_explored_versions():
    archive = [standing(0, None, [0.3], children=0), standing(1, 0, [0.8], children=0),
               standing(2, 0, [0.8], children=9)]
    rng = random.Random(7)
    drawn = Counter(dgm_policy(archive, rng).base for _ in range(3000))
    # weights: sigmoid(−2) = 0.119, sigmoid(3) = 0.953, 0.953 / 10 = 0.095
    assert drawn[1] > 5 * drawn[0] and drawn[1] > 5 * drawn[2]
    assert drawn[0] > 0 and drawn[2] > 0
    first = [dgm_policy(archive, random.Random(3)).base for _ in range(5)]
    assert first == [dgm_policy(archive, random.Random(3)).base for _ in range(5)]  # the seed decides


def test_hgm_pools_a_clade_s_results():
    """Version 1 scored little itself, but its descendants (not candidates here: not yet evaluated for
    selection) solved everything: pooled, its clade is the better bet than the root's."""
    archive = [standing(0, None, [0.5] * 4, scores=[0.0] * 4),
               standing(1, 0, [0.2] * 4, scores=[0.0, 0.0, 0.0, 1.0], children=2),
               standing(2, 1, [], scores=[1.0] * 4),
               standing(3, 1, [], scores=[1.0] * 4)]
    rng = random.Random(11)
    chosen = Counter(hgm_policy(archive, rng).base for _ in range(2000))
    assert set(chosen) <= {0, 1}
    # clade of 1: 9 of 12 solved, Beta(10, 4), mean 0.71; clade of 0: 9 of 16, Beta(10, 8), mean 0.56
    assert chosen[1] > 2 * chosen[0]


def test_greedy_and_empty_archives():
    archive = [standing(0, None, [0.4]), standing(1, 0, [0.6]), standing(2, 0, [0.6])]
    assert POLICIES["greedy"](archive, random.Random(0)) == POLICIES["greedy"](archive, random.Random(9))
    assert POLICIES["greedy"](archive, random.Random(0)).base == 2  # a tie goes to the most recent
    for policy in POLICIES.values():
        with pytest.raises(SelectionError, match="evaluate agent 0 first"):
            policy([standing(0, None, [])], random.Random(0))


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_a_version_caught_tampering_is_never_chosen(name):
    """Its scores may look best (a scorer it fooled elsewhere), yet it is neither meta agent nor base."""
    archive = [standing(0, None, [0.3, 0.4]), standing(1, 0, [1.0, 1.0])]
    archive[1] = VersionStanding(1, 0, (1.0, 1.0), (1.0, 1.0), 0, tampered=1)
    for seed in range(50):
        assert POLICIES[name](archive, random.Random(seed)) == Selection(0, 0)
