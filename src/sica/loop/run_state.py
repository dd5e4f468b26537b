"""The loop's state in the run's `run.sqlite` as typed fields. The keys and JSON values are those runs have always
stored (`iteration`, `plan`, `elapsed_s`, `account:KEY`...), so a run folder made before resumes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sica.archive.run_db import RunDb
from sica.loop.plan import Plan

T = TypeVar("T")


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
    """What the run was started with (its `config`) as a resumed run takes it: the mix, the model, the policy."""

    benchmarks: list[str]
    holdout: list[str]
    model: str | None
    policy: str | None
    #: The models of its agents and of its meta agents, as described when it started (for people; not resumed).
    models: str | None = None
    meta_models: str | None = None


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
            stored.get("benchmarks", []),
            stored.get("holdout", []),
            stored.get("model"),
            stored.get("policy"),
            stored.get("models"),
            stored.get("meta_models"),
        )

    @property
    def created_at(self) -> float | None:
        """When the run was created, in seconds since the epoch (`Run.create` records it)."""
        stored = self.db.get_state("created_at")
        return None if stored is None else float(stored)

    def account(self, key: str) -> str | None:
        """The id of the run's account kept under `key`, if one was opened."""
        stored = self.db.get_state(f"account:{key}")
        return None if stored is None else str(stored)

    def set_account(self, key: str, account_id: str) -> None:
        self.db.set_state(f"account:{key}", account_id)
