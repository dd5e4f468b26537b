"""The loop's state in the run's `run.sqlite` as typed fields. The keys and JSON values are those runs have always
stored (`iteration`, `plan`, `elapsed_s`, `account:KEY`...), so a run folder made before resumes; the keys added
since (`numbers`, `selection problems`) are read as absent from such a run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sica.archive.run_db import RunDb
from sica.loop.plan import Plan
from sica.loop.run_numbers import NumbersChange, RunNumbers
from sica.runner.evaluate import SELECTION

T = TypeVar("T")

#: The run's record of what defines its numbers and its changes since, under one key so that both change at once.
NUMBERS = "numbers"
SELECTION_PROBLEMS = "selection problems"


class _Stored(Generic[T]):
    """A field of the run's state, kept as JSON under `key`: `read` turns the stored value (or `default`, when there
    is none) into the field's, `write` the field's into what is stored."""

    def __init__(
        self, key: str, default: Any, read: Callable[[Any], T], write: Callable[[T], Any] = lambda value: value
    ) -> None:
        self.key, self.default, self.read, self.write = key, default, read, write

    def __get__(self, state: RunState, owner: type[RunState] | None = None) -> T:
        return self.read(state.db.get_state(self.key, self.default))

    def __set__(self, state: RunState, value: T) -> None:
        state.db.set_state(self.key, self.write(value))


def _plan(stored: Any) -> Plan | None:
    return None if stored is None else Plan(**stored)


def _stored_plan(plan: Plan | None) -> Any:
    return None if plan is None else dataclasses.asdict(plan)


def _usd(stored: Any) -> float | None:
    return None if stored is None else float(stored)


@dataclass(frozen=True)
class RunConfig:
    """What the run was started with (its `config`) as a resumed run takes it: the mix, the model, the policy it
    was made with (the policy it runs with is its record's, `RunState.numbers`)."""

    benchmarks: list[str]
    holdout: list[str]
    model: str | None
    policy: str | None


class RunState:
    """The loop's typed view of the run's state: read and written through at once, so a crash loses nothing."""

    #: Whether agent 0's evaluation is complete (a halted one is not).
    agent_0_evaluated = _Stored("agent-0 evaluated", False, bool)
    #: The number of the last iteration done.
    iteration = _Stored("iteration", 0, int)
    #: The last iteration planned (done or under way).
    plan = _Stored("plan", None, _plan, _stored_plan)
    #: The run's wall time in seconds, the work under way excluded.
    elapsed_s = _Stored("elapsed_s", 0.0, float)
    #: The run's budget (`[loop] budget_usd`) when the run's account last refused a call.
    budget_ran_out_at = _Stored("budget ran out at", None, _usd)

    def __init__(self, db: RunDb) -> None:
        self.db = db

    @property
    def config(self) -> RunConfig:
        stored = self.db.get_state("config", {})
        return RunConfig(
            stored.get("benchmarks", []), stored.get("holdout", []), stored.get("model"), stored.get("policy")
        )

    @staticmethod
    def at_creation(numbers: RunNumbers) -> dict[str, Any]:
        """The state a new run starts with (beside what `Run.create` stores): its record of what defines its
        numbers."""
        return {NUMBERS: {"record": numbers.stored(), "changes": []}}

    @property
    def numbers(self) -> RunNumbers | None:
        """The run's record of what defines its numbers; None for a run made before records were stored, and not
        resumed since."""
        stored = self.db.get_state(NUMBERS)
        return None if stored is None else RunNumbers.model_validate(stored["record"])

    @property
    def numbers_changes(self) -> list[NumbersChange]:
        """The resumes that changed the run's record (switched it, or stored a first one), oldest first."""
        stored = self.db.get_state(NUMBERS)
        return [] if stored is None else [NumbersChange.from_stored(change) for change in stored["changes"]]

    def adopt_numbers(self, change: NumbersChange) -> None:
        """Make `change.current` the run's record, `change` added to its changes (one write)."""
        changes = [*(known.stored() for known in self.numbers_changes), change.stored()]
        self.db.set_state(NUMBERS, {"record": change.current.stored(), "changes": changes})

    @property
    def selection_problems(self) -> list[str]:
        """The mix's selection problems in the order agent 0's evaluation planned them (stages are taken in this
        order); for a run made before the order was stored, agent 0's selection problems by id, the order such
        runs have always staged in."""
        stored = self.db.get_state(SELECTION_PROBLEMS)
        if stored is not None:
            return [str(problem_id) for problem_id in stored]
        return [e.problem_id for e in self.db.evaluations(0, part=SELECTION)]

    def keep_selection_problems(self, problem_ids: Sequence[str]) -> None:
        """Store the order of the mix's selection problems, once: the first order stored stays."""
        if self.db.get_state(SELECTION_PROBLEMS) is None:
            self.db.set_state(SELECTION_PROBLEMS, list(problem_ids))

    def account(self, key: str) -> str | None:
        """The id of the run's account kept under `key`, if one was opened."""
        stored = self.db.get_state(f"account:{key}")
        return None if stored is None else str(stored)

    def set_account(self, key: str, account_id: str) -> None:
        self.db.set_state(f"account:{key}", account_id)
