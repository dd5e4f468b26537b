"""Selection policies: given the archive's valid, evaluated versions, which version acts as the meta agent (the
one whose `improve` runs) and which is the base (whose code it edits). Each is a small function of the archive and
a `random.Random` whose state the loop stores, so that a resumed run chooses as an uninterrupted one would.

- `sica` (the SICA paper): the meta agent is the version of best utility; the base is the most recent version
  whose mean utility is within the best one's 95% confidence bound (so a lucky outlier does not block newer
  versions that are as good).
- `dgm` (Darwin Gödel Machine): one version, drawn with weight `sigmoid(10·(u − 0.5)) / (1 + children)`, edits
  itself: good versions are favoured, much-explored ones less so.
- `hgm` (Huxley-Gödel Machine): Thompson sampling on clade-pooled results: each version's clade (it and its
  descendants) pools its problems' scores as fractional successes; a draw from Beta(1 + successes, 1 + failures)
  per version, the highest edits itself.
- `greedy`: the version of best utility edits itself.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sica.runner.stats import mean_interval


@dataclass(frozen=True)
class VersionStanding:
    """What a policy knows of a valid, evaluated version: its parent, per-problem utilities and scores (selection
    part only), and how many versions were edited from it."""

    number: int
    parent: int | None
    utilities: tuple[float, ...]
    scores: tuple[float, ...]
    children: int
    tampered: int = 0

    @property
    def utility(self) -> float:
        return sum(self.utilities) / len(self.utilities)


@dataclass(frozen=True)
class Selection:
    meta_agent: int
    base: int


Policy = Callable[[Sequence[VersionStanding], random.Random], Selection]


class SelectionError(Exception):
    """Nothing to select from; one line."""


def _candidates(versions: Sequence[VersionStanding]) -> list[VersionStanding]:
    """The versions a policy may choose: evaluated, and never caught tampering with a scorer (such a version is
    neither the best, nor a meta agent, nor a base to build on)."""
    evaluated = [v for v in versions if v.utilities and not v.tampered]
    if not evaluated:
        raise SelectionError("no valid, evaluated version to select from: evaluate agent 0 first")
    return evaluated


def _best(versions: Sequence[VersionStanding]) -> VersionStanding:
    """Highest utility; on a tie the most recent."""
    return max(versions, key=lambda v: (v.utility, v.number))


def sica_policy(versions: Sequence[VersionStanding], rng: random.Random) -> Selection:
    candidates = _candidates(versions)
    best = _best(candidates)
    interval = mean_interval(best.utilities)
    bound = interval.mean - (interval.half_width or 0.0)
    base = max((v for v in candidates if v.utility >= bound), key=lambda v: v.number)
    return Selection(best.number, base.number)


def dgm_policy(versions: Sequence[VersionStanding], rng: random.Random) -> Selection:
    candidates = _candidates(versions)
    weights = [1 / (1 + math.exp(-10 * (v.utility - 0.5))) / (1 + v.children) for v in candidates]
    chosen = rng.choices(candidates, weights=weights)[0]
    return Selection(chosen.number, chosen.number)


def hgm_policy(versions: Sequence[VersionStanding], rng: random.Random) -> Selection:
    candidates = _candidates(versions)
    children: dict[int, list[VersionStanding]] = {}
    for v in versions:
        if v.parent is not None:
            children.setdefault(v.parent, []).append(v)

    def clade(root: VersionStanding) -> list[VersionStanding]:
        members, stack = [], [root]
        while stack:
            member = stack.pop()
            members.append(member)
            stack.extend(children.get(member.number, []))
        return members

    def draw(v: VersionStanding) -> float:
        scores = [score for member in clade(v) for score in member.scores]
        successes = sum(scores)
        return rng.betavariate(1 + successes, 1 + len(scores) - successes)

    chosen = max(candidates, key=lambda v: (draw(v), v.number))
    return Selection(chosen.number, chosen.number)


def greedy_policy(versions: Sequence[VersionStanding], rng: random.Random) -> Selection:
    best = _best(_candidates(versions))
    return Selection(best.number, best.number)


POLICIES: dict[str, Policy] = {"sica": sica_policy, "dgm": dgm_policy, "hgm": hgm_policy, "greedy": greedy_policy}
