"""What defines a run's numbers, stored with the run when it is made: its mix (selection and held-out benchmarks),
its selection policy and the policy's parameters (`[loop] policy`, `seed`, `hgm_alpha`), its staged evaluation
(`[loop] stages`, `staging`) and its utility's weights and caps (`[loop.utility]`). The loop and the report compute
the run's utilities, choices and stages with this record, never with the configuration of the day.

A resume compares the record its configuration gives with the run's: when they differ it is refused (one line
naming each field with both values, and the fix) unless it asks to switch; a switch is recorded in the run with the
iteration it applies from. A run made before records were stored takes its record from its first resume's
configuration, and says so once."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from sica.config import LoopSettings, Settings, UtilitySettings

#: The flag a refused resume names as the way to adopt its configuration's numbers.
SWITCH_FLAG = "--switch-config"


class NumbersMismatch(Exception):
    """A resume's configuration defines the run's numbers otherwise than the run's record; one line."""


class RunNumbers(BaseModel):
    """The record of what defines a run's numbers (the module's docstring lists it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    benchmarks: tuple[str, ...]
    holdout: tuple[str, ...]
    policy: str
    seed: int
    hgm_alpha: float
    stages: tuple[int, ...]
    staging: str
    utility: UtilitySettings

    @classmethod
    def of(cls, loop: LoopSettings, benchmarks: Sequence[str], holdout: Sequence[str], policy: str) -> RunNumbers:
        """The record `[loop]` gives a run of this mix and policy."""
        return cls(
            benchmarks=tuple(benchmarks),
            holdout=tuple(holdout),
            policy=policy,
            seed=loop.seed,
            hgm_alpha=loop.hgm_alpha,
            stages=tuple(loop.stages),
            staging=loop.staging,
            utility=loop.utility,
        )

    def named(self) -> dict[str, Any]:
        """Each field under the name its setting has (`loop.stages`, `loop.utility.score_weight`; the mix's by the
        flags that give it), with its value as JSON."""
        stored = self.stored()
        utility = stored.pop("utility")
        mix = {"benchmarks": stored.pop("benchmarks"), "holdout": stored.pop("holdout")}
        return (
            mix
            | {f"loop.{key}": value for key, value in stored.items()}
            | {f"loop.utility.{k}": v for k, v in utility.items()}
        )

    def differences(self, other: RunNumbers) -> list[tuple[str, Any, Any]]:
        """The fields whose values differ: name, this record's value, `other`'s."""
        mine, theirs = self.named(), other.named()
        return [(name, value, theirs[name]) for name, value in mine.items() if theirs[name] != value]

    def stored(self) -> dict[str, Any]:
        """The record as the run state keeps it (JSON)."""
        return self.model_dump(mode="json")

    def applied_to(self, settings: Settings) -> Settings:
        """`settings` whose `[loop]` numbers are the record's, so that whatever computes the run's numbers uses
        the run's."""
        loop = settings.loop.model_copy(
            update={
                "policy": self.policy,
                "seed": self.seed,
                "hgm_alpha": self.hgm_alpha,
                "stages": list(self.stages),
                "staging": self.staging,
                "utility": self.utility,
            }
        )
        return settings.model_copy(update={"loop": loop})


def configured_policy(loop: LoopSettings) -> str | None:
    """`[loop] policy` when the configuration names it (in the file or the environment), else None: a run made
    with `--policy` keeps its policy on resume unless the configuration names another."""
    return loop.policy if "policy" in loop.model_fields_set else None


@dataclass(frozen=True)
class NumbersChange:
    """A resume's change of the run's record: adopted from `iteration` on (the first iteration under it), at time
    `at`. `previous` is None when the run predated stored records and took its first from that resume."""

    at: float
    iteration: int
    previous: RunNumbers | None
    current: RunNumbers

    def line(self) -> str:
        """The change in one line, as the loop says it and the report shows it."""
        if self.previous is None:
            return (
                f"the run's numbers were first stored at iteration {self.iteration}: the run predates stored numbers, "
                "so they were taken from that resume's configuration"
            )
        changes = "; ".join(
            f"{name} {_shown(before)} → {_shown(after)}"
            for name, before, after in self.previous.differences(self.current)
        )
        return f"the run's numbers changed at iteration {self.iteration}: {changes}"

    def stored(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "iteration": self.iteration,
            "previous": None if self.previous is None else self.previous.stored(),
            "current": self.current.stored(),
        }

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> NumbersChange:
        previous = stored.get("previous")
        return cls(
            float(stored["at"]),
            int(stored["iteration"]),
            None if previous is None else RunNumbers.model_validate(previous),
            RunNumbers.model_validate(stored["current"]),
        )


def resume_numbers(
    stored: RunNumbers | None, current: RunNumbers, *, switch: bool, run: str, iteration: int
) -> tuple[RunNumbers, NumbersChange | None]:
    """The record a resume of `run` goes on with, and the change to store when there is one: the run's own when
    `current` (the resume's configuration's) agrees with it; `current` when the run has none yet or `switch`
    asks for it, from `iteration` on. Otherwise refused: NumbersMismatch names each differing field and the fix."""
    if stored is None:
        return current, NumbersChange(time.time(), iteration, None, current)
    differences = stored.differences(current)
    if not differences:
        return stored, None
    if switch:
        return current, NumbersChange(time.time(), iteration, stored, current)
    shown = "; ".join(
        f"{name} is {_shown(theirs)} here, {_shown(mine)} in the run" for name, mine, theirs in differences
    )
    raise NumbersMismatch(
        f"run {run} was made with other numbers: {shown}; put the run's values back in sica.toml, or adopt these "
        f"from iteration {iteration} with `sica improve --resume {run} {SWITCH_FLAG}`"
    )


def _shown(value: Any) -> str:
    return json.dumps(value)
