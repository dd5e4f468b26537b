"""Utility and the selection policies, as functions of a hand-made archive."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass

import pytest

from sica.config import UtilitySettings
from sica.loop.comparison import Standing, best_version, estimated_utility
from sica.loop.policies import (POLICIES, Selection, SelectionError, clade_successes, clades, dgm_policy, dgm_weight,
                                hgm_expands, hgm_policy, sica_policy)
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
             scores: list[float] | None = None, first: int = 0, tampered: int = 0) -> Standing:
    """A version run on problems p{first}, p{first + 1}, … with these utilities (and scores, default the same)."""
    problems = [f"p{first + index}" for index in range(len(utilities))]
    scored = scores if scores is not None else utilities
    return Standing(number, parent, dict(zip(problems, utilities, strict=True)),
                    dict(zip([f"p{first + i}" for i in range(len(scored))], scored, strict=True)),
                    frozenset(problems), children, tampered)


def mix(size: int) -> frozenset[str]:
    return frozenset(f"p{index}" for index in range(size))


def test_sica_takes_the_best_as_meta_agent_and_the_newest_not_provably_worse_as_base():
    archive = [standing(0, None, [0.5, 0.6, 0.7, 0.6], children=2),
               standing(1, 0, [0.9, 0.8, 0.7, 0.8], children=1),      # best: mean 0.8
               standing(2, 1, [0.75, 0.7, 0.72, 0.73]),                 # paired −0.075 ± 0.114: not provably worse
               standing(3, 0, [0.1, 0.2, 0.1, 0.2])]                    # newest, but provably worse
    assert sica_policy(archive, mix(4), random.Random(0)) == (selection := sica_policy(archive, mix(4),
                                                                                        random.Random(1)))
    assert (selection.meta_agent, selection.base) == (1, 2)
    only_best = [standing(0, None, [0.2, 0.2]), standing(1, 0, [0.9, 0.9])]
    assert sica_policy(only_best, mix(2), random.Random(0)).base == 1


def test_a_version_stopped_early_is_never_best_meta_agent_or_base():
    """The reproduction: agent 0 ran the whole mix (easy first-stage problems, hard others: mean 0.5); version 1
    stopped after the easy first stage with a mean of 0.8 there, yet did worse than agent 0 on those very problems.
    Ranked by the mean over what each ran, version 1 was the best, meta agent and base; like for like it is none."""
    agent_0 = standing(0, None, [0.9] * 5 + [0.1] * 5, children=1)
    stopped = standing(1, 0, [0.8] * 5)
    archive = [agent_0, stopped]
    assert stopped.utility is not None and agent_0.utility is not None and stopped.utility > agent_0.utility
    assert best_version(archive, mix(10)) == agent_0
    for name in ("sica", "greedy"):
        for seed in range(20):
            assert POLICIES[name](archive, mix(10), random.Random(seed)) == Selection(0, 0)


def test_an_infrastructure_failure_a_version_provoked_does_not_make_it_the_best():
    """Version 1 does better than agent 0 on the problems it scored, but its attempt at the hardest one ended in an
    infrastructure failure (which a version may provoke: say, a request its provider rejects with a 5xx). Left out,
    the problem would drop from the comparison and version 1 would be best; counted 0, agent 0 stays best."""
    agent_0 = standing(0, None, [0.6, 0.6, 0.6, 1.0])
    provoker = Standing(1, 0, {"p0": 0.7, "p1": 0.7, "p2": 0.7}, {"p0": 1.0, "p1": 1.0, "p2": 1.0}, mix(4))
    assert provoker.complete(mix(4)) and provoker.utility is not None and provoker.utility > 0.6
    assert best_version([agent_0, provoker], mix(4)) == agent_0
    assert best_version([agent_0, Standing(1, 0, {**provoker.utilities, "p3": 1.0}, {}, mix(4))], mix(4)).number == 1


def test_equal_means_tie_to_the_earlier_version_whatever_the_order_of_summing():
    """Floating-point sums depend on their order (0.2 + 0.7 + 0.1 is 0.9999999999999999, 0.1 + 0.2 + 0.7 is 1.0):
    means are summed exactly, so a version with the same values on other problems ties, and the earlier keeps the
    place whatever order the mix's problems come in."""
    values = [0.1, 0.2, 0.7, 0.3, 0.6, 0.05, 0.15, 0.45, 0.35, 0.9]
    rng = random.Random(0)
    for _ in range(50):
        later = rng.sample(values, len(values))
        archive = [standing(0, None, values), standing(1, 0, later)]
        assert best_version(archive, mix(len(values))) == archive[0]
        assert best_version(archive[::-1], mix(len(values))) == archive[0]


def test_dgm_weighs_a_version_stopped_early_by_its_paired_difference():
    """A version that stopped early after doing better than the best on its problems is weighed by the best's
    utility plus that difference, not by its mean over the easy problems it ran."""
    agent_0 = standing(0, None, [0.9] * 5 + [0.1] * 5)
    better = standing(1, 0, [1.0] * 5)
    assert estimated_utility(better, agent_0) == pytest.approx(0.5 + 0.1)
    assert dgm_weight(0.6, 0) == pytest.approx(1 / (1 + math.exp(-1)))
    assert dgm_weight(0.6, 3) == pytest.approx(dgm_weight(0.6, 0) / 4)


def test_dgm_favours_good_and_little_explored_versions():
    archive = [standing(0, None, [0.3], children=0), standing(1, 0, [0.8], children=0),
               standing(2, 0, [0.8], children=9)]
    rng = random.Random(7)
    drawn = Counter(dgm_policy(archive, mix(1), rng).base for _ in range(3000))
    # weights: sigmoid(−2) = 0.119, sigmoid(3) = 0.953, 0.953 / 10 = 0.095
    assert drawn[1] > 5 * drawn[0] and drawn[1] > 5 * drawn[2]
    assert drawn[0] > 0 and drawn[2] > 0
    first = [dgm_policy(archive, mix(1), random.Random(3)).base for _ in range(5)]
    assert first == [dgm_policy(archive, mix(1), random.Random(3)).base for _ in range(5)]  # the seed decides


def test_hgm_pools_a_clade_s_results():
    """Version 1 scored little itself, but its descendants (not candidates here: not yet evaluated for
    selection) solved everything: pooled, its clade is the better bet than the root's."""
    archive = [standing(0, None, [0.5] * 4, scores=[0.0] * 4),
               standing(1, 0, [0.2] * 4, scores=[0.0, 0.0, 0.0, 1.0], children=2),
               standing(2, 1, [], scores=[1.0] * 4),
               standing(3, 1, [], scores=[1.0] * 4)]
    assert clade_successes(clades(archive)[1]) == (9.0, 3.0)
    assert clade_successes(clades(archive)[0]) == (9.0, 7.0)
    rng = random.Random(11)
    chosen = Counter(hgm_policy(archive, mix(4), rng).base for _ in range(2000))
    assert set(chosen) <= {0, 1}
    # clade of 1: 9 of 12 solved, Beta(10, 4), mean 0.71; clade of 0: 9 of 16, Beta(10, 8), mean 0.56
    assert chosen[1] > 2 * chosen[0]


def test_hgm_expands_when_evaluations_to_the_alpha_reach_the_versions():
    assert hgm_expands(evaluations=16, versions=4, alpha=0.5)  # 16^0.5 = 4 ≥ 4
    assert not hgm_expands(evaluations=15, versions=4, alpha=0.5)
    assert hgm_expands(evaluations=100, versions=15, alpha=0.6)  # 100^0.6 = 15.8
    assert not hgm_expands(evaluations=100, versions=16, alpha=0.6)


def test_greedy_and_empty_archives():
    archive = [standing(0, None, [0.4]), standing(1, 0, [0.6]), standing(2, 0, [0.6])]
    assert POLICIES["greedy"](archive, mix(1), random.Random(0)) == POLICIES["greedy"](archive, mix(1),
                                                                                        random.Random(9))
    assert POLICIES["greedy"](archive, mix(1), random.Random(0)).base == 1  # a tie keeps the earlier
    for policy in POLICIES.values():
        with pytest.raises(SelectionError, match="evaluate agent 0 first"):
            policy([standing(0, None, [])], mix(1), random.Random(0))


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_a_version_caught_tampering_is_never_chosen(name):
    """Its scores may look best (a scorer it fooled elsewhere), yet it is neither meta agent nor base."""
    archive = [standing(0, None, [0.3, 0.4]), standing(1, 0, [1.0, 1.0], tampered=1)]
    for seed in range(50):
        assert POLICIES[name](archive, mix(2), random.Random(seed)) == Selection(0, 0)
