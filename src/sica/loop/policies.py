"""Selection policies: given the run's valid versions (`comparison.Standing`) and the selection mix, which version
acts as the meta agent (the one whose `improve` runs) and which is the base (whose code it edits). Each is a small
pure function of the standings and a `random.Random` whose state the loop stores, so that a resumed run chooses as
an uninterrupted one would. Every comparison is like for like (`comparison`): a version evaluated on part of the
mix is never the best, and is weighed by its paired difference from the best on the problems both ran.

- `sica` (the SICA paper, the default): the meta agent is the best version; the base is the most recent version
  run on the whole mix that is not provably worse than the best (paired 95% interval), so a lucky outlier does not
  block newer versions that are as good.
- `dgm` (Darwin Gödel Machine): one version, drawn with weight `sigmoid(10·(u − 0.5)) / (1 + children)`, edits
  itself; `u` is its utility estimated like for like (`comparison.estimated_utility` against the best).
- `hgm` (Huxley-Gödel Machine): Thompson sampling on clade-metaproductivity: each version's clade (it and its
  descendants) pools its members' selection scores as fractional successes and failures; a draw from
  Beta(1 + successes, 1 + failures) per version, the highest edits itself. `hgm_expands` is its decision between
  making a new version and evaluating one further; `hgm_evaluation_pick` chooses which (the loop then runs one
  more of its selection problems, drawn at random among those it has not run).
- `greedy`: the best version edits itself.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sica.loop.comparison import Standing, best_version, estimated_utility, paired_difference


@dataclass(frozen=True)
class Selection:
    meta_agent: int
    base: int


Policy = Callable[[Sequence[Standing], frozenset[str], random.Random], Selection]


class SelectionError(Exception):
    """Nothing to select from; one line."""


def _best(standings: Sequence[Standing], mix: frozenset[str]) -> Standing:
    best = best_version(standings, mix)
    if best is None:
        raise SelectionError("no valid version was evaluated on the whole selection mix: evaluate agent 0 first")
    _untampered(standings)  # nothing scored at all: say so, rather than choose among zeros
    return best


def _untampered(standings: Sequence[Standing]) -> list[Standing]:
    """The versions a policy may build on: evaluated, and never caught tampering with a scorer."""
    found = [s for s in standings if s.utilities and not s.tampered]
    if not found:
        raise SelectionError(
            "no valid version has a scored problem (agent 0's attempts all failed on infrastructure?): check the "
            "provider and `sica improve --resume`, which evaluates agent 0's failed problems again"
        )
    return found


def sica_policy(standings: Sequence[Standing], mix: frozenset[str], rng: random.Random) -> Selection:
    best = _best(standings, mix)
    as_good = [
        s
        for s in _untampered(standings)
        if s.complete(mix) and not paired_difference(s.on_mix(mix), best.on_mix(mix)).worse
    ]
    base = max(as_good, key=lambda s: s.number, default=best)
    return Selection(best.number, base.number)


def dgm_weight(utility: float, children: int) -> float:
    """DGM's parent weight: the sigmoid of the utility around 0.5 with slope 10, shared among its children."""
    return 1 / (1 + math.exp(-10 * (utility - 0.5))) / (1 + children)


def dgm_policy(standings: Sequence[Standing], mix: frozenset[str], rng: random.Random) -> Selection:
    best = _best(standings, mix)
    candidates = _untampered(standings)
    weights = [dgm_weight(estimated_utility(s, best), s.children) for s in candidates]
    chosen = rng.choices(candidates, weights=weights)[0]
    return Selection(chosen.number, chosen.number)


def clades(standings: Sequence[Standing]) -> dict[int, list[Standing]]:
    """Each version's clade: it and all its descendants among `standings`."""
    children: dict[int, list[Standing]] = {}
    for s in standings:
        if s.parent is not None:
            children.setdefault(s.parent, []).append(s)
    found: dict[int, list[Standing]] = {}
    for root in standings:
        members, stack = [], [root]
        while stack:
            member = stack.pop()
            members.append(member)
            stack.extend(children.get(member.number, []))
        found[root.number] = members
    return found


def clade_successes(clade: Sequence[Standing]) -> tuple[float, float]:
    """HGM's clade-metaproductivity counts: the clade's scores pooled as (successes, failures), a problem a member
    attempted without a score (an infrastructure failure) a failure."""
    scores = [score for member in clade for score in member.counted_scores()]
    return sum(scores), len(scores) - sum(scores)


def hgm_policy(standings: Sequence[Standing], mix: frozenset[str], rng: random.Random) -> Selection:
    _best(standings, mix)
    pooled = clades([s for s in standings if not s.tampered])  # a tamperer's scores credit no ancestor

    def draw(s: Standing) -> float:
        successes, failures = clade_successes(pooled[s.number])
        return rng.betavariate(1 + successes, 1 + failures)

    chosen = max(_untampered(standings), key=lambda s: (draw(s), s.number))
    return Selection(chosen.number, chosen.number)


def hgm_evaluation_pick(standings: Sequence[Standing], rng: random.Random) -> Standing:
    """HGM's evaluation step's choice: Thompson sampling on each version's own results (not its clade's)."""

    def draw(s: Standing) -> float:
        scores = s.counted_scores()
        return rng.betavariate(1 + sum(scores), 1 + len(scores) - sum(scores))

    return max(standings, key=lambda s: (draw(s), s.number))


def hgm_expands(evaluations: int, versions: int, alpha: float) -> bool:
    """HGM's choice: make a new version when evaluations^alpha ≥ versions, else evaluate an existing one further
    (`evaluations` counts problems evaluated over all versions)."""
    return bool(evaluations**alpha >= versions)


def greedy_policy(standings: Sequence[Standing], mix: frozenset[str], rng: random.Random) -> Selection:
    best = _best(standings, mix)
    return Selection(best.number, best.number)


POLICIES: dict[str, Policy] = {"sica": sica_policy, "dgm": dgm_policy, "hgm": hgm_policy, "greedy": greedy_policy}
