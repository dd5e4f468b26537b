"""An iteration's plan: who edits what, chosen by the selection policy with the random state the last plan left
(so a resumed run chooses as an uninterrupted one would), and stored before its meta step starts."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sica.loop.comparison import Standing
from sica.loop.policies import POLICIES


@dataclass(frozen=True)
class Plan:
    """The iteration under way: who edits what, the policy's random state after choosing, and the number its version
    will get. A resumed run finishes this iteration as planned: it neither chooses again nor, once the version is
    committed, edits again."""

    iteration: int
    meta_agent: int
    base: int
    version: int
    rng: list[Any]


def choose_plan(
    iteration: int,
    last: Plan | None,
    standings: Sequence[Standing],
    mix: frozenset[str],
    policy: str,
    seed: int,
    version: int,
) -> Plan:
    """A new plan for `iteration` (its version numbered `version`): the policy's choice among `standings` on the
    selection `mix`, its random
    state seeded with `seed` for the first plan, else the one `last` left."""
    rng = random.Random(seed)
    if last is not None:
        state_version, internal, gauss = last.rng
        rng.setstate((state_version, tuple(internal), gauss))
    selection = POLICIES[policy](standings, mix, rng)
    state_version, internal, gauss = rng.getstate()
    return Plan(iteration, selection.meta_agent, selection.base, version, [state_version, list(internal), gauss])
