#!/usr/bin/env python
"""How often each selection policy and staging scheme reports the true best version, how good what it reports
truly is, and how many evaluations it spends: simulated improvement runs whose true per-version success rates are
known, driven through the loop's own selection code (`sica.loop.comparison.best_version`, `policies.POLICIES`,
`hgm_expands`, `hgm_evaluation_pick`, `staging.stages`, `sequential_look`, `dgm_look`, `paired_difference` and
`PairedDifference.close` for rematches), side by side with today's selection (as of commit
c04c7df, reproduced compactly below as the baseline). No model, no sandbox: a run of one scheme is a few ms.

Generative model (one simulated run; every draw is shared by all schemes, see "common random numbers"):

* the selection mix: `--mix` problems (50) in three benchmark blocks of about equal size, ordered by benchmark as a
  mix is; problem p's difficulty d_p ~ N(m_b, 1.2²) with block means m_b = −1, 0, +1 (an easy, a middling and a
  hard benchmark);
* a version v has an ability a_v (agent 0: a_0 = 0) and solves problem p with probability π_vp = σ(a_v − d_p),
  σ the logistic. Its true expected score on the mix is the mean of π_vp over the mix (agent 0's is about 0.50),
  and its true expected utility is the project's utility with fixed cost and time terms (every problem costs
  $1.25 of the $10 cap and takes 150 s of the 300 s cap): U_v = 0.5·score + 0.25·0.875 + 0.25·0.5, so 0.01 of
  utility is 2 points of score. (These terms make every utility a binary fraction, so sums are exact in any order
  and equal means tie exactly, as `best_version`'s tie rule expects.);
* outcomes: version v's outcome on p is 1 when its luck u_vp < π_vp. Agent 0's luck is uniform per problem; a new
  version inherits its base's luck on each problem, except that with probability `--redraw` (0.26) it is drawn
  afresh (its edit, or just another run, takes another path there). Each u_vp is uniform, so every outcome is
  exactly Bernoulli(π_vp), yet related versions agree where nothing changed: an unchanged copy of a version
  differs from it on about one problem in ten (printed), like temperature-0 reruns. Per-problem differences
  between relatives are mostly 0, which is what the paired comparisons of `comparison` exploit;
* lineages: the new version's ability is its base's plus an edit effect Δ (logits): harmful Δ = −Exp(mean 0.5)
  with probability 0.35 (`--harmful`, `--harm-mean`), helpful Δ = +Exp(mean 0.3) with probability
  p_h = 0.2 + 0.1·(a_meta − a_0) clipped to [0.05, 0.4] (`--helpful`, `--help-mean`: a better meta agent makes
  helpful edits more often), else neutral (Δ = 0 exactly). Improvements and damage are inherited by every
  descendant and add up: the model has no local optima, so exploring from weaker versions never pays here.
  No version is invalid or tampers (the loop's checks keep an invalid one out of selection at no selection cost).

A run: agent 0 is evaluated on the whole mix, then `--iterations` (15) iterations each make one version: the policy
(with a `random.Random` seeded per run) picks the meta agent and the base from the standings (per-problem
utilities and scores of what was evaluated, parent = base, children = versions made from it), the version is made
as above and evaluated in stages as `Evaluations.staged` does: the best is `best_version` of the other versions
before its evaluation, each stage's new problems are evaluated, and it stops at a look that says so. Then, as
`Evaluations._rematch` does, when it ran the whole mix and came close to that best
(`paired_difference(candidate.on_mix(mix), best.on_mix(mix)).close(close_margin)`, `[loop] close_margin` 0.02),
the best solves the whole mix once more, unless it has had `[loop] rematches` (1) rematches already: a repeat is a
fresh draw of every outcome (independent of the first round, each Bernoulli(π_vp); the draws are the world's, per
iteration and role, so paired across schemes), and each problem's utility and score in the standings becomes the
mean over the rounds. Its evaluations count. Every scheme makes the same number of versions.

Schemes (table rows):

* `today: sica [5] promising`, the baseline (`today_*` below): a version's utility is the mean over whatever
  problems it ran; the best is the highest such mean (ties: the most recent), whether or not it ran the whole mix;
  a first stage of 5 problems, then the rest only when "promising" (the upper end of its 95% t interval on those
  problems reaches the best's mean on them); the sica policy's base is the most recent version whose mean is at
  least the best's mean minus the best's 95% half-width;
* `sica [5, 15] sequential` (the config's default, rematches on as the loop runs: only the best re-run), `sica
  [5, 15] sequential remat-all` (both the best and the challenger re-run, as the loop first did), `sica [5, 15]
  sequential rematches=0` (no rematches), `sica [5] sequential`, `greedy [5, 15] sequential`, and
  `dgm [5, 15] dgm` (the DGM policy with `staging = "dgm"`: a version goes on while its mean score at a look is at
  least 0.4): today's code with those `[loop] policy`, `stages`, `staging` and `rematches` (1 unless named);
* `hgm [5, 15] sequential α=0.6`: the HGM policy with the loop's evaluation steps (`Evaluations.
  hgm_evaluation_steps`): before each new version, while `hgm_expands(evaluations, versions, --hgm-alpha)` is false
  (agent 0 and its evaluations not counted; repeats not counted either, as `attempted` is a set of problems), the
  version `hgm_evaluation_pick` chooses among those not run on the whole mix solves one more problem drawn at random
  among those it has not run (`random.Random(f"{seed}:{evaluations}")`, the seed the run's policy seed); brought
  to the whole mix so, it may become the best (no look, no rematch);
* `--sweep`: the sica policy with the whole mix at once (no looks: the accuracy ceiling of staging), two rematches,
  other close margins, other stages, `staging = "dgm"`, and two look rules that are proposals, not in src/sica:
  `level` (go on only when the paired mean difference against the best on shared problems is ≥ 0) and `ahead`
  (> 0); HGM at α = 0.5, 0.4 and 0.3, and greedy and HGM without rematches.
* `--explore`: proposals (not in src/sica) aimed at the target: futility looks at a lower confidence (`fut80`,
  `fut90`: stop when the one-sided 80% or 90% t upper bound of the paired mean difference against the best is below
  0, or below the `+δ` the name gives; `seq+fut...`: the sequential look first, the futility look from the second
  on), and other rematches (`remat-ahead`: only a close challenger ahead of the best; `remat-differ`: both repeat
  only the problems where they differ; `remat-all`, `remat-child`: both, or only the challenger, repeat the whole
  mix; `remat-best/k`: only the best repeats a `spread` k-th of the mix), with other stages.

Columns, over `--runs` runs (1000): P(best=true), the chance that the reported best (`best_version`; today's own
best for the baseline) is a true best (the highest true utility among the versions that run made; ties count),
with its 95% Wilson interval, its ratio to today's and its paired difference from today's (mean of the per-run
differences, 95% t interval); the mean true utility of the reported best, its paired difference from today's, and
its regret (the true best's utility minus it); evaluations per run (problems evaluated, agent 0's whole mix
included) and their ratio to today's; the share of new versions stopped before the whole mix; and each change of
the reported best to another version (acc/run), with the shares of those where the new best was truly better or
truly worse than the one it replaced (the report measures the same rate on held-out problems); rematches and HGM
evaluation steps per run (both included in the evaluations). The verdict is the
target: today's accuracy at half the evaluations (P ≥ today's at ≤ 0.5× evaluations), or a better accuracy at no
more evaluations (paired difference's interval above 0 at ≤ 1× evaluations); "(but less true U)" when the true
utility reached is provably below today's.

Common random numbers: run r of every scheme has the same world (difficulties, agent 0's luck, each iteration's
redraw draws and fresh luck, each iteration's edit draws) and the same policy seed, so the k-th version of every
scheme gets the same edit and the same luck where it redraws, applied to its own base: differences are paired.

    .venv/bin/python bench/selection.py                 # 1000 runs × 15 iterations, mix 50: ~55 s of CPU
    .venv/bin/python bench/selection.py --sweep         # and the sweep: ~5 min of CPU
    .venv/bin/python bench/selection.py --quick         # 30 runs × 6 iterations, mix 30 (for a test): ~1 s
    .venv/bin/python bench/selection.py --explore --runs 400   # and the proposals aimed at the target: ~4 min
    .venv/bin/python bench/selection.py --runs 4000 --iterations 30 --mix 100 --seed 7 --helpful 0.1
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sica.loop.comparison import Standing, best_version, paired_difference
from sica.loop.policies import POLICIES, hgm_evaluation_pick, hgm_expands
from sica.loop.staging import dgm_look, sequential_look, spread, stages
from sica.runner.stats import mean_interval

#: Block means of the difficulties (three benchmarks, ordered by benchmark) and the spread within a block.
BENCHMARK_DIFFICULTY = (-1.0, 0.0, 1.0)
DIFFICULTY_SD = 1.2
#: The project's utility with fixed cost and time terms: 0.5·score + 0.25·(1 − 1.25/10) + 0.25·(1 − 150/300).
#: (Chosen so that every utility is a binary fraction: sums are exact whatever their order, so ties stay ties.)
SCORE_WEIGHT = 0.5
FIXED_TERMS = 0.25 * (1 - 1.25 / 10) + 0.25 * (1 - 150 / 300)
#: The config's default scheme (`[loop]`), the one bench/README.md recommends keeping.
DEFAULT = "sica [5, 15] sequential"
#: Today's first stage (c04c7df's `stages[0]`).
TODAY_FIRST_STAGE = 5


@dataclass(frozen=True)
class Model:
    """The generative model's knobs (module docstring); the defaults are the documented model."""

    redraw: float = 0.26  # chance that a new version's luck on a problem is drawn afresh, not inherited
    harmful: float = 0.35  # chance of a harmful edit
    helpful: float = 0.2  # chance of a helpful edit when the meta agent is as able as agent 0
    meta_effect: float = 0.1  # ... plus this per logit of the meta agent's ability (clipped to [0.05, 0.4])
    harm_mean: float = 0.5  # mean size of a harmful edit's effect (logits)
    help_mean: float = 0.3  # mean size of a helpful edit's effect (logits)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# --- one run's draws, shared by every scheme -------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """Everything random in a run except the policies' own draws: the same for every scheme."""

    model: Model
    ids: list[str]
    difficulty: list[float]
    luck0: list[float]
    redraw: list[list[float]]  # per iteration, per problem: a uniform draw, redrawn when below `model.redraw`
    fresh: list[list[float]]  # per iteration, per problem
    edit_kind: list[float]  # per iteration: a uniform draw choosing neutral, harmful or helpful
    edit_size: list[float]  # per iteration: an Exp(1) draw scaled by the kind's mean
    policy_seed: int
    rematch_seed: str  # seeds each iteration's rematch draws (`rematch_luck`), apart from the draws above

    def rematch_luck(self, k: int) -> tuple[list[float], list[float]]:
        """The fresh luck of iteration k's rematch: the best's and the candidate's, one uniform per problem (a
        repeat is a fresh draw of every outcome, independent of the first round)."""
        rng = random.Random(f"{self.rematch_seed}:{k}")
        mix = len(self.ids)
        return [rng.random() for _ in range(mix)], [rng.random() for _ in range(mix)]


def make_world(model: Model, seed: int, run: int, mix: int, iterations: int) -> World:
    rng = random.Random(seed * 1_000_003 + run)
    blocks = len(BENCHMARK_DIFFICULTY)
    difficulty = [rng.gauss(BENCHMARK_DIFFICULTY[p * blocks // mix], DIFFICULTY_SD) for p in range(mix)]
    ids = [f"bench{p * blocks // mix}/{p:03d}" for p in range(mix)]
    return World(
        model,
        ids,
        difficulty,
        [rng.random() for _ in range(mix)],
        [[rng.random() for _ in range(mix)] for _ in range(iterations)],
        [[rng.random() for _ in range(mix)] for _ in range(iterations)],
        [rng.random() for _ in range(iterations)],
        [rng.expovariate(1.0) for _ in range(iterations)],
        rng.randrange(2**32),
        f"rematch:{seed}:{run}",
    )


@dataclass
class Version:
    """A simulated version: its truth (ability, luck, chances and outcomes on every problem, true utility) and what
    the loop has seen of it (the utilities and scores of the problems evaluated so far, each the mean over its
    rounds, as `evaluation.standings` gives them)."""

    number: int
    parent: int | None
    ability: float
    luck: list[float]
    chances: list[float]
    outcomes: list[int]
    true_utility: float
    utilities: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    solved: dict[str, int] = field(default_factory=dict)  # per problem: successes over its rounds
    trials: dict[str, int] = field(default_factory=dict)  # per problem: its rounds (1 + the rematches that ran it)
    rounds: int = 1  # rounds on the whole mix: 1 + its rematches
    children: int = 0
    _standing: Standing | None = None

    def standing(self) -> Standing:
        """What selection sees of it (kept until it is evaluated further or a version is made from it)."""
        if self._standing is None:
            self._standing = Standing(
                self.number, self.parent, self.utilities, self.scores, frozenset(self.utilities), self.children
            )
        return self._standing

    def made_from(self) -> None:
        self.children += 1
        self._standing = None

    def reveal(self, world: World, problems: Sequence[str], index: dict[str, int]) -> int:
        """Evaluate the problems not yet evaluated; how many that was."""
        spent = 0
        for problem in problems:
            if problem not in self.scores:
                self.solved[problem] = self.outcomes[index[problem]]
                self.trials[problem] = 1
                self._score(problem)
                spent += 1
        if spent:
            self._standing = None
        return spent

    def rematch(self, luck: Sequence[float], ids: Sequence[str], only: frozenset[str] | None = None) -> int:
        """Solve the whole mix (or the problems `only` names) once more (a repeat: fresh outcomes from `luck`); each
        problem's utility and score becomes the mean over its rounds. How many problems that was."""
        self.rounds += 1
        spent = 0
        for i, problem in enumerate(ids):
            if only is None or problem in only:
                self.solved[problem] += int(luck[i] < self.chances[i])
                self.trials[problem] += 1
                self._score(problem)
                spent += 1
        self._standing = None
        return spent

    def _score(self, problem: str) -> None:
        score = self.solved[problem] / self.trials[problem]
        self.scores[problem] = score
        self.utilities[problem] = SCORE_WEIGHT * score + FIXED_TERMS


def inherited(world: World, k: int, luck: Sequence[float]) -> list[float]:
    """The luck of iteration k's version: its base's, drawn afresh where the world's redraw draw says so."""
    threshold = world.model.redraw
    return [f if r < threshold else u for u, r, f in zip(luck, world.redraw[k], world.fresh[k], strict=True)]


def make_version(world: World, number: int, parent: Version | None, meta: Version | None) -> Version:
    """Agent 0 (no parent), or the version made in iteration `number` from `parent` by `meta` (generative model)."""
    if parent is None or meta is None:
        ability, luck = 0.0, list(world.luck0)
    else:
        k, model = number - 1, world.model
        helpful = min(0.4, max(0.05, model.helpful + model.meta_effect * meta.ability))
        draw = world.edit_kind[k]
        if draw < model.harmful:
            delta = -model.harm_mean * world.edit_size[k]
        elif draw < model.harmful + helpful:
            delta = model.help_mean * world.edit_size[k]
        else:
            delta = 0.0
        ability = parent.ability + delta
        luck = inherited(world, k, parent.luck)
    chances = [sigmoid(ability - d) for d in world.difficulty]
    outcomes = [int(u < c) for u, c in zip(luck, chances, strict=True)]
    true_utility = SCORE_WEIGHT * sum(chances) / len(chances) + FIXED_TERMS
    return Version(number, None if parent is None else parent.number, ability, luck, chances, outcomes, true_utility)


# --- today's selection (c04c7df), compactly: a reference, not production code ------------------------------------


def today_mean(v: Version) -> float:
    return sum(v.utilities.values()) / len(v.utilities)


def today_best(versions: Sequence[Version]) -> Version | None:
    """Highest mean over whatever the version ran; ties to the most recent."""
    return max(versions, key=lambda v: (today_mean(v), v.number), default=None)


def today_sica(versions: Sequence[Version]) -> tuple[Version, Version]:
    """(meta agent, base): the best, and the most recent version whose mean is ≥ the best's lower 95% bound."""
    best = today_best(versions)
    assert best is not None
    interval = mean_interval(list(best.utilities.values()))
    bound = interval.mean - (interval.half_width or 0.0)
    return best, max((v for v in versions if today_mean(v) >= bound), key=lambda v: v.number)


def today_promising(candidate: Version, best: Version | None, stage: Sequence[str]) -> bool:
    """The rest of the mix only when the upper end of the first stage's 95% interval reaches the best's mean on the
    same problems."""
    if best is None:
        return True
    shared = [p for p in stage if p in candidate.utilities and p in best.utilities]
    if not shared:
        return True
    interval = mean_interval([candidate.utilities[p] for p in shared])
    reference = sum(best.utilities[p] for p in shared) / len(shared)
    return interval.mean + (interval.half_width or 0.0) >= reference


# --- a simulated run ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one run of one scheme gives."""

    found: bool  # the reported best is (one of) the true best
    reported: float  # the reported best's true utility
    true_best: float  # the highest true utility among the versions made
    evaluations: int
    accepted: int  # times the reported best changed to another version (agent 0's first place not counted)
    better: int  # ... to a truly better one
    worse: int  # ... to a truly worse one
    stopped: int  # new versions stopped before the whole mix
    rematches: int = 0  # rematches (each: the best and the candidate solve the whole mix once more)
    steps: int = 0  # HGM evaluation steps (each: one more problem for a version not run on the whole mix)


class Acceptances:
    """Each change of the reported best, judged by the truth."""

    def __init__(self) -> None:
        self.current: Version | None = None
        self.accepted = self.better = self.worse = 0

    def see(self, best: Version | None) -> None:
        if best is None or (self.current is not None and best.number == self.current.number):
            return
        if self.current is not None:
            self.accepted += 1
            self.better += best.true_utility > self.current.true_utility
            self.worse += best.true_utility < self.current.true_utility
        self.current = best


def outcome(
    versions: Sequence[Version],
    reported: Version,
    evaluations: int,
    seen: Acceptances,
    stopped: int,
    rematches: int = 0,
    steps: int = 0,
) -> Outcome:
    true_best = max(v.true_utility for v in versions)
    return Outcome(
        reported.true_utility >= true_best - 1e-12,
        reported.true_utility,
        true_best,
        evaluations,
        seen.accepted,
        seen.better,
        seen.worse,
        stopped,
        rematches,
        steps,
    )


def run_today(world: World, iterations: int) -> Outcome:
    """The baseline: c04c7df's sica policy, first stage and promising rule, and its best."""
    index = {p: i for i, p in enumerate(world.ids)}
    agent0 = make_version(world, 0, None, None)
    evaluations = agent0.reveal(world, world.ids, index)
    versions = [agent0]
    seen = Acceptances()
    seen.see(agent0)
    stopped = 0
    stage = spread(world.ids, TODAY_FIRST_STAGE)
    for k in range(1, iterations + 1):
        meta, base = today_sica(versions)
        child = make_version(world, k, base, meta)
        base.made_from()
        best = today_best(versions)
        evaluations += child.reveal(world, stage, index)
        if today_promising(child, best, stage):
            evaluations += child.reveal(world, world.ids, index)
        else:
            stopped += len(stage) < len(world.ids)
        versions.append(child)
        seen.see(today_best(versions))
    reported = today_best(versions)
    assert reported is not None
    return outcome(versions, reported, evaluations, seen, stopped)


def sequential_stop(child: Version, best: Version | None, look: int) -> bool:
    return sequential_look(child.utilities, best.utilities if best else None, best.number if best else 0).stop


def dgm_stop(child: Version, best: Version | None, look: int) -> bool:
    return dgm_look(list(child.scores.values()), look).stop


def level_stop(child: Version, best: Version | None, look: int) -> bool:
    """Proposal (not in src/sica): stop unless the candidate is at least level with the best on shared problems
    (paired mean difference ≥ 0)."""
    return best is not None and paired_difference(child.utilities, best.utilities).mean < 0


def ahead_stop(child: Version, best: Version | None, look: int) -> bool:
    """Proposal (not in src/sica): stop unless the candidate is ahead of the best on shared problems (paired mean
    difference > 0)."""
    return best is not None and paired_difference(child.utilities, best.utilities).mean <= 0


#: One-sided Student's t quantiles at 80% and 90% for df 1..30 (the normal's beyond).
T_ONE_SIDED = {
    0.8: (
        (1.376, 1.061, 0.978, 0.941, 0.920, 0.906, 0.896, 0.889, 0.883, 0.879, 0.876, 0.873, 0.870, 0.868, 0.866)
        + (0.865, 0.863, 0.862, 0.861, 0.860, 0.859, 0.858, 0.858, 0.857, 0.856, 0.856, 0.855, 0.855, 0.854, 0.854),
        0.842,
    ),
    0.9: (
        (3.078, 1.886, 1.638, 1.533, 1.476, 1.440, 1.415, 1.397, 1.383, 1.372, 1.363, 1.356, 1.350, 1.345, 1.341)
        + (1.337, 1.333, 1.330, 1.328, 1.325, 1.323, 1.321, 1.319, 1.318, 1.316, 1.315, 1.314, 1.313, 1.311, 1.310),
        1.282,
    ),
}


def futility(level: float, delta: float, first: int = 0) -> Callable[[Version, Version | None, int], bool]:
    """Proposal (not in src/sica): stop when the one-sided `level` upper bound of the paired mean difference
    against the best on shared problems is below `delta` (needs two shared problems; all differences equal: the
    bound is the mean); at looks before `first`, the loop's sequential look instead."""
    table, normal = T_ONE_SIDED[level]

    def stop(child: Version, best: Version | None, look: int) -> bool:
        if look < first:
            return sequential_stop(child, best, look)
        if best is None:
            return False
        differences = [child.utilities[p] - best.utilities[p] for p in child.utilities.keys() & best.utilities]
        n = len(differences)
        if n < 2:
            return False
        mean = sum(differences) / n
        sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
        t = table[n - 2] if n - 1 <= len(table) else normal
        return mean + t * sd / math.sqrt(n) < delta

    return stop


#: How a look decides whether to stop: today's two rules, and the proposals (`futility`: `fut<level>[+delta]`, and
#: `seq+fut...`: the sequential look first, the futility look from the second look on).
LOOKS: dict[str, Callable[[Version, Version | None, int], bool]] = {
    "sequential": sequential_stop,
    "dgm": dgm_stop,
    "level": level_stop,
    "ahead": ahead_stop,
    **{
        f"fut{round(level * 100)}" + (f"{delta:+}" if delta else ""): futility(level, delta)
        for level in T_ONE_SIDED
        for delta in (0.0, -0.01, 0.01)
    },
    **{
        f"seq+fut{round(level * 100)}" + (f"{delta:+}" if delta else ""): futility(level, delta, first=1)
        for level in T_ONE_SIDED
        for delta in (0.0, -0.01, 0.01)
    },
}


def hgm_steps(world: World, versions: Sequence[Version], alpha: float, index: dict[str, int]) -> int:
    """`Evaluations.hgm_evaluation_steps`: while `hgm_expands` is false (agent 0 and its evaluations not counted),
    the version `hgm_evaluation_pick` chooses among those not run on the whole mix solves one more problem, drawn at
    random among those it has not run, with the loop's seeding (the run's seed and the evaluations so far). How many
    steps it took (each one evaluation)."""
    mix = frozenset(world.ids)
    steps = 0
    while True:
        later = [v.standing() for v in versions[1:]]
        evaluations = sum(len(s.attempted) for s in later)
        unfinished = [s for s in later if not s.complete(mix)]
        if not unfinished or hgm_expands(evaluations, len(later), alpha):
            return steps
        rng = random.Random(f"{world.policy_seed}:{evaluations}")
        chosen = hgm_evaluation_pick(unfinished, rng)
        problem = rng.choice([p for p in world.ids if p not in chosen.attempted])
        versions[chosen.number].reveal(world, [problem], index)
        steps += 1


def run_new(
    world: World,
    iterations: int,
    policy: str,
    sizes: Sequence[int],
    staging: str,
    alpha: float | None,
    rematches: int = 1,
    close_margin: float = 0.02,
    rematch_when: str = "close",
    rematch_on: str = "best",
) -> Outcome:
    """Today's code: `POLICIES[policy]`, `stages(mix, sizes)` with `staging`'s looks, `best_version`, the rematch
    of `Evaluations._rematch` (`[loop] rematches`, `close_margin`; `rematch_on="best"`: only the best re-runs the
    whole mix); with `alpha`, HGM's evaluation steps before each new version (`hgm_steps`). Other rematches, for
    comparison (not in src/sica): `rematch_when="ahead"` rematches only a close candidate whose mean difference is
    above 0; `rematch_on="differ"` repeats only the problems where the two differ, `"all"` both whole mixes (as the
    loop first did), `"child"` only the candidate's, `"best/k"` the best's on a k-th of it (`spread`)."""
    index = {p: i for i, p in enumerate(world.ids)}
    mix = frozenset(world.ids)
    looks = stages(world.ids, sizes)
    rng = random.Random(world.policy_seed)
    agent0 = make_version(world, 0, None, None)
    evaluations = agent0.reveal(world, world.ids, index)
    versions = [agent0]
    seen = Acceptances()
    seen.see(agent0)
    stopped = rematched = steps = 0

    def best_of(standings: Sequence[Standing]) -> Version | None:
        best = best_version(standings, mix)
        return None if best is None else versions[best.number]

    for k in range(1, iterations + 1):
        if alpha is not None:
            taken = hgm_steps(world, versions, alpha, index)
            steps += taken
            evaluations += taken
            if taken:
                seen.see(best_of([v.standing() for v in versions]))
        standings = [v.standing() for v in versions]
        selection = POLICIES[policy](standings, mix, rng)
        base = versions[selection.base]
        child = make_version(world, k, base, versions[selection.meta_agent])
        base.made_from()
        best = seen.current  # best_version of `standings` (children do not count), as of the last change seen
        whole = True
        for look_index, problems in enumerate(looks):
            evaluations += child.reveal(world, problems, index)
            if look_index == len(looks) - 1:
                break
            if LOOKS[staging](child, best, look_index):
                stopped += 1
                whole = False
                break
        if whole and best is not None:
            difference = paired_difference(child.standing().on_mix(mix), best.standing().on_mix(mix))
            # `_next_round` is 1 + the rematches a version has had: none when either has had `rematches` already
            wanted = difference.close(close_margin) and (rematch_when == "close" or difference.mean > 0)
            rounds = best.rounds if rematch_on.startswith("best") else max(best.rounds, child.rounds)
            if wanted and rounds <= rematches:
                luck_best, luck_child = world.rematch_luck(k)
                only = None
                if rematch_on == "differ":
                    only = frozenset(p for p in world.ids if child.utilities[p] != best.utilities[p])
                elif rematch_on.startswith("best/"):
                    only = frozenset(spread(world.ids, len(world.ids) // int(rematch_on[len("best/") :])))
                if rematch_on != "child":
                    evaluations += best.rematch(luck_best, world.ids, only)
                if not rematch_on.startswith("best"):
                    evaluations += child.rematch(luck_child, world.ids, only)
                rematched += 1
        versions.append(child)
        seen.see(best_of([v.standing() for v in versions]))
    reported = seen.current  # best_version of the final standings
    assert reported is not None
    return outcome(versions, reported, evaluations, seen, stopped, rematched, steps)


# --- schemes, figures, the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scheme:
    name: str
    run: Callable[[World, int], Outcome]


def new_scheme(
    policy: str,
    sizes: Sequence[int],
    staging: str = "sequential",
    alpha: float | None = None,
    label: str = "",
    rematches: int = 1,
    close_margin: float = 0.02,
    rematch_when: str = "close",
    rematch_on: str = "best",
) -> Scheme:
    """Today's code with those `[loop]` settings; the label names those not at the config's default."""
    label = label or f"{policy} {list(sizes)} {staging}" + (f" α={alpha}" if alpha is not None else "")
    label += f" rematches={rematches}" if rematches != 1 else ""
    label += f" margin={close_margin}" if close_margin != 0.02 and rematches else ""
    label += f" remat-{rematch_when}" if rematch_when != "close" and rematches else ""
    label += f" remat-{rematch_on}" if rematch_on != "best" and rematches else ""
    return Scheme(
        label,
        lambda world, iterations: run_new(
            world,
            iterations,
            policy,
            sizes,
            staging,
            alpha,
            rematches=rematches,
            close_margin=close_margin,
            rematch_when=rematch_when,
            rematch_on=rematch_on,
        ),
    )


def main_schemes(alpha: float) -> list[Scheme]:
    """The comparison asked for: the baseline first."""
    return [
        Scheme("today: sica [5] promising", run_today),
        new_scheme("sica", [5, 15]),
        new_scheme("sica", [5, 15], rematch_on="all"),
        new_scheme("sica", [5, 15], rematches=0),
        new_scheme("sica", [5]),
        new_scheme("greedy", [5, 15]),
        new_scheme("dgm", [5, 15], "dgm"),
        new_scheme("hgm", [5, 15], alpha=alpha),
    ]


def sweep_schemes() -> list[Scheme]:
    """`--sweep`: the sica policy's other stages and looks (today's rules, then the two proposals), and HGM's
    expansion rule where it binds."""
    found = [new_scheme("sica", [sys.maxsize], label="sica, whole mix at once (no looks)")]
    found += [new_scheme("sica", [5, 15], rematches=2)]
    found += [new_scheme("sica", [5, 15], close_margin=margin) for margin in (0.0, 0.01, 0.05)]
    found += [new_scheme("sica", sizes) for sizes in ([3], [10], [20], [3, 10], [10, 25], [3, 10, 25])]
    found += [new_scheme("sica", sizes, "dgm") for sizes in ([5], [10], [5, 15])]
    for look in ("level", "ahead"):
        found += [new_scheme("sica", sizes, look) for sizes in ([5], [15], [25], [5, 15], [10, 25])]
    found += [new_scheme("hgm", [5, 15], alpha=alpha) for alpha in (0.5, 0.4, 0.3)]
    found += [new_scheme("greedy", [5, 15], rematches=0)]
    found += [new_scheme("hgm", [5, 15], alpha=0.6, rematches=0)]
    return found


def explore_schemes() -> list[Scheme]:
    """`--explore`: proposals (not in src/sica) aimed at the target: futility looks at a lower confidence
    (`fut80`, `fut90`, with a margin), rematches only when the challenger is ahead or only on the problems where
    the two differ, other stages, and their combinations."""
    found = [new_scheme("sica", [5, 15], look) for look in ("fut80", "fut90", "fut80+0.01", "fut90+0.01")]
    found += [new_scheme("sica", [5, 15], look) for look in ("fut80-0.01", "fut90-0.01")]
    found += [new_scheme("sica", [5, 15], rematch_when="ahead")]
    found += [new_scheme("sica", [5, 15], rematch_when="ahead", rematch_on="differ")]
    for sizes in ([5, 15], [3, 10], [5], [10]):
        found += [new_scheme("sica", sizes, look, rematch_on="differ") for look in ("sequential", "fut80", "fut90")]
    found += [new_scheme("sica", [5, 15], look, rematches=0) for look in ("fut80", "fut90")]
    found += [new_scheme("sica", [5, 15], "fut80", rematches=2, rematch_on="differ")]
    found += [new_scheme("sica", [5, 15], rematch_on=on) for on in ("all", "child")]
    found += [new_scheme("sica", [5, 15], rematch_when="ahead", rematch_on=on) for on in ("best", "child")]
    found += [new_scheme("sica", [5, 15], rematches=2, rematch_on="differ")]
    found += [new_scheme("sica", sizes, rematch_when="ahead") for sizes in ([5], [10], [3, 10])]
    found += [new_scheme("sica", [5, 15], "fut90-0.01", rematch_when="ahead")]
    found += [new_scheme("sica", [5, 15], close_margin=m, rematch_on="best") for m in (0.0, 0.01)]
    found += [new_scheme("sica", [5, 15], look, rematch_on="best") for look in ("fut80", "fut90", "fut90-0.01")]
    found += [new_scheme("sica", sizes, rematch_on="best") for sizes in ([5], [3, 10], [10])]
    found += [new_scheme("sica", [5, 15], rematches=2, rematch_on="best")]
    found += [new_scheme("sica", sizes, "fut90", close_margin=0.0, rematch_on="best") for sizes in ([5, 15], [10])]
    for sizes in ([5, 15], [5, 25], [5, 15, 30], [3, 10, 25]):
        found += [new_scheme("sica", sizes, look, rematch_on="best") for look in ("seq+fut80", "seq+fut90")]
    found += [new_scheme("sica", [5, 15], "seq+fut80", close_margin=0.01, rematch_on="best")]
    found += [new_scheme("sica", [5, 15], "seq+fut80-0.01", rematch_on="best")]
    for look in ("sequential", "seq+fut90", "fut90-0.01"):
        found += [new_scheme("sica", [5, 15], look, rematch_on="best/2")]
    found += [
        new_scheme("sica", [5], rematch_on="best/2"),
        new_scheme("sica", [5, 15], rematches=2, rematch_on="best/2"),
    ]
    found += [new_scheme("sica", [5, 15], rematch_on=f"best/{k}") for k in (3, 4, 5, 10)]
    found += [new_scheme("sica", [5, 15], look, rematch_on="best/4") for look in ("fut90-0.01", "seq+fut90-0.01")]
    found += [new_scheme("sica", [5, 15], close_margin=m, rematch_on="best/4") for m in (0.01, 0.05)]
    found += [new_scheme("sica", [5, 15], rematches=2, rematch_on="best/4")]
    for k in (2, 3):
        found += [new_scheme("sica", [5, 15], look, rematch_on=f"best/{k}") for look in ("seq+fut90-0.01",)]
    found += [new_scheme("sica", [5, 15], "fut90-0.01", rematch_on="best/3")]
    return found


def wilson(successes: int, n: int) -> tuple[float, float]:
    """The 95% Wilson interval of a proportion."""
    z = 1.96
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@dataclass(frozen=True)
class Figures:
    name: str
    found: float  # P(reported best = true best)
    interval: tuple[float, float]
    delta: float  # paired difference of `found` against the baseline
    delta_half: float
    utility: float
    utility_delta: float  # paired difference of `utility` against the baseline
    utility_half: float
    regret: float
    evaluations: float
    stopped: float  # share of new versions stopped before the whole mix
    accepted: float  # changes of the reported best per run
    better: float  # share of them truly better than the one replaced
    worse: float
    rematches: float  # rematches per run
    steps: float  # HGM evaluation steps per run


def figures(name: str, outcomes: Sequence[Outcome], baseline: Sequence[Outcome], iterations: int) -> Figures:
    n = len(outcomes)
    found = sum(o.found for o in outcomes)
    paired = mean_interval([float(o.found) - float(b.found) for o, b in zip(outcomes, baseline, strict=True)])
    gained = mean_interval([o.reported - b.reported for o, b in zip(outcomes, baseline, strict=True)])
    accepted = sum(o.accepted for o in outcomes)
    return Figures(
        name,
        found / n,
        wilson(found, n),
        paired.mean,
        paired.half_width or 0.0,
        sum(o.reported for o in outcomes) / n,
        gained.mean,
        gained.half_width or 0.0,
        sum(o.true_best - o.reported for o in outcomes) / n,
        sum(o.evaluations for o in outcomes) / n,
        sum(o.stopped for o in outcomes) / (n * iterations),
        accepted / n,
        sum(o.better for o in outcomes) / accepted if accepted else math.nan,
        sum(o.worse for o in outcomes) / accepted if accepted else math.nan,
        sum(o.rematches for o in outcomes) / n,
        sum(o.steps for o in outcomes) / n,
    )


def verdict(f: Figures, base: Figures) -> str:
    """Against the target: today's accuracy at half the evaluations, or a better accuracy at no more evaluations."""
    if f is base:
        return "baseline"
    ratio = f.evaluations / base.evaluations
    caveat = " (but less true U)" if f.utility_delta + f.utility_half < 0 else ""
    if ratio <= 0.5 and f.found >= base.found:
        return "MET: today's accuracy at <= half the evaluations" + caveat
    if ratio <= 1.0 and f.delta - f.delta_half > 0:
        return "MET: better accuracy (paired CI > 0) at <= the evaluations" + caveat
    if ratio <= 1.0 and f.delta > 0:
        return "not met: better accuracy, not provably" + caveat
    return "not met" + caveat


COLUMNS = (
    f"{'scheme':<40} {'P(best=true) [95% CI]':>21} {'×today':>6} {'ΔP vs today':>14} {'true U':>6}"
    f" {'ΔU vs today':>16} {'regret':>6} {'evals':>5} {'×today':>6} {'stopped':>7} {'acc/run':>7} {'better':>6}"
    f" {'worse':>5} {'remat':>5} {'steps':>5}  verdict"
)


def row(f: Figures, base: Figures) -> str:
    low, high = f.interval
    return (
        f"{f.name:<40} {f.found:>5.3f} [{low:.3f}, {high:.3f}] {f.found / base.found:>6.2f}"
        f" {f.delta:>+6.3f} ± {f.delta_half:.3f} {f.utility:>6.4f} {f.utility_delta:>+7.4f} ± {f.utility_half:.4f}"
        f" {f.regret:>6.4f} {f.evaluations:>5.0f} {f.evaluations / base.evaluations:>6.2f} {f.stopped:>7.2f}"
        f" {f.accepted:>7.2f} {f.better:>6.2f} {f.worse:>5.2f} {f.rematches:>5.2f} {f.steps:>5.1f}  {verdict(f, base)}"
    )


def summary(shown: Sequence[Figures]) -> str:
    """The config's default (bench/README.md says why it stays) and what stands out among the new schemes."""
    fair = [f for f in shown if f.utility_delta + f.utility_half >= 0]
    right = max(fair, key=lambda f: f.found, default=None)
    most = max(shown, key=lambda f: f.utility)
    cheapest = min(shown, key=lambda f: f.evaluations)
    return (
        f"default ([loop] policy, stages, staging): {DEFAULT} (bench/README.md says why)\n"
        "most often the true best, of the new schemes whose true utility is not provably below today's: "
        + (f"{right.name} ({right.found:.3f})" if right else "none")
        + f"\nhighest true utility: {most.name} ({most.utility:.4f}); fewest evaluations: {cheapest.name}"
        f" ({cheapest.evaluations:.0f})"
    )


def variants(names: Sequence[str]) -> list[tuple[str, str]]:
    """(scheme, the same scheme at the config's rematch settings) for each row that names other ones."""
    found = []
    for name in names:
        for setting in (" rematches=", " margin="):
            if setting in name:
                plain = name[: name.index(setting)]
                if plain in names:
                    found.append((name, plain))
                break
    return found


def versus(name: str, outcomes: Sequence[Outcome], other: str, others: Sequence[Outcome]) -> str:
    """One scheme against another, paired per run: accuracy, true utility, evaluations."""
    pairs = list(zip(outcomes, others, strict=True))
    found = mean_interval([float(o.found) - float(b.found) for o, b in pairs])
    gained = mean_interval([o.reported - b.reported for o, b in pairs])
    spent = sum(o.evaluations for o in outcomes) / sum(b.evaluations for b in others)
    return (
        f"{name} vs {other}: ΔP {found.mean:+.3f} ± {found.half_width or 0.0:.3f}, ΔU {gained.mean:+.4f} ±"
        f" {gained.half_width or 0.0:.4f}, evaluations ×{spent:.2f}"
    )


def flip_rate(worlds: Sequence[World]) -> float:
    """The share of per-problem outcomes on which an unchanged copy of agent 0 differs from it."""
    flips = total = 0
    for world in worlds:
        agent0 = make_version(world, 0, None, None)
        copy = inherited(world, 0, agent0.luck)
        chances = [sigmoid(-d) for d in world.difficulty]
        flips += sum(int(u < c) != o for u, c, o in zip(copy, chances, agent0.outcomes, strict=True))
        total += len(chances)
    return flips / total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1000, help="simulated runs per scheme (1000)")
    parser.add_argument("--iterations", type=int, default=15, help="new versions per run (15)")
    parser.add_argument("--mix", type=int, default=50, help="problems in the selection mix (50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the worlds and of the policies' draws (0)")
    parser.add_argument("--hgm-alpha", type=float, default=0.6, help="HGM's expansion exponent (0.6, the config's)")
    defaults = Model()
    for knob in ("redraw", "harmful", "helpful", "help_mean", "harm_mean"):
        parser.add_argument(
            f"--{knob.replace('_', '-')}",
            type=float,
            default=getattr(defaults, knob),
            help=f"model: {knob} (%(default)s)",
        )
    parser.add_argument(
        "--sweep", action="store_true", help="also the sweep: other stages, looks and HGM α (~4× as long)"
    )
    parser.add_argument(
        "--explore", action="store_true", help="also the proposals aimed at the target (futility looks, rematches)"
    )
    parser.add_argument("--quick", action="store_true", help="30 runs of 6 iterations on a mix of 30 (for a test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.iterations, args.mix = 30, 6, 30
    if args.runs < 2 or args.iterations < 1 or args.mix < 2:
        parser.error("needs --runs >= 2, --iterations >= 1 and --mix >= 2")

    started = time.process_time()
    main_list = main_schemes(args.hgm_alpha)
    sweep = (sweep_schemes() if args.sweep else []) + (explore_schemes() if args.explore else [])
    model = Model(args.redraw, args.harmful, args.helpful, defaults.meta_effect, args.harm_mean, args.help_mean)
    worlds = [make_world(model, args.seed, run, args.mix, args.iterations) for run in range(args.runs)]
    results = {s.name: [s.run(world, args.iterations) for world in worlds] for s in main_list + sweep}
    seconds = time.process_time() - started

    baseline = results[main_list[0].name]
    base = figures(main_list[0].name, baseline, baseline, args.iterations)
    agent0 = sum(make_version(w, 0, None, None).true_utility for w in worlds) / len(worlds)
    print(
        f"selection bench: {args.runs} runs × {args.iterations} iterations, mix of {args.mix}, seed {args.seed};"
        f" agent 0's true utility {agent0:.4f}; an unchanged copy of a version differs from it on"
        f" {flip_rate(worlds[:200]):.3f} of the problems"
    )
    print(
        "P(best=true): the reported best is the true best of the versions made; Δ: paired against today's, per run;"
        " true U, regret: utility\n(0.01 = 2 points of score); evals: problems evaluated per run, agent 0's"
        " included; stopped: share of new versions stopped early;\nacc/run: changes of the reported best per run;"
        " better/worse: share of those changes to a truly better/worse version than the one replaced"
    )
    print()
    print(COLUMNS)
    print(row(base, base))
    shown = [figures(scheme.name, results[scheme.name], baseline, args.iterations) for scheme in main_list[1:]]
    for f in shown:
        print(row(f, base))
    if sweep:
        print("sweep (and --explore; level, ahead, fut*, remat-*: proposals, not in src/sica):")
        for scheme in sweep:
            print(row(figures(scheme.name, results[scheme.name], baseline, args.iterations), base))
    print()
    print("rematch settings, paired per run against the config's (rematches = 1, close_margin = 0.02):")
    for name, plain in variants(list(results)):
        print("  " + versus(name, results[name], plain, results[plain]))
    print()
    print(summary(shown))
    print()
    print(f"{seconds:.1f} s of CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
