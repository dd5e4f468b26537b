"""The loop's state in the run's `run.sqlite` as typed fields. The keys and JSON values are those runs have always
stored (`iteration`, `plan`, `elapsed_s`, `account:KEY`...), so a run folder made before resumes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sica.archive.run_db import RunDb
from sica.loop.plan import Plan


@dataclass(frozen=True)
class RunConfig:
    """What the run was started with (its `config`) as a resumed run takes it: the mix, the model, the policy."""

    benchmarks: list[str]
    holdout: list[str]
    model: str | None
    policy: str | None


class RunState:
    """The loop's typed view of the run's state: read and written through at once, so a crash loses nothing."""

    def __init__(self, db: RunDb) -> None:
        self._db = db

    @property
    def config(self) -> RunConfig:
        stored = self._db.get_state("config", {})
        return RunConfig(
            stored.get("benchmarks", []), stored.get("holdout", []), stored.get("model"), stored.get("policy")
        )

    @property
    def agent_0_evaluated(self) -> bool:
        """Whether agent 0's evaluation is complete (a halted one is not)."""
        return bool(self._db.get_state("agent-0 evaluated", False))

    @agent_0_evaluated.setter
    def agent_0_evaluated(self, value: bool) -> None:
        self._db.set_state("agent-0 evaluated", value)

    @property
    def iteration(self) -> int:
        """The number of the last iteration done."""
        return int(self._db.get_state("iteration", 0))

    @iteration.setter
    def iteration(self, value: int) -> None:
        self._db.set_state("iteration", value)

    @property
    def plan(self) -> Plan | None:
        """The last iteration planned (done or under way)."""
        stored = self._db.get_state("plan", None)
        return None if stored is None else Plan(**stored)

    @plan.setter
    def plan(self, value: Plan) -> None:
        self._db.set_state("plan", dataclasses.asdict(value))

    @property
    def elapsed_s(self) -> float:
        """The run's wall time in seconds, the work under way excluded."""
        return float(self._db.get_state("elapsed_s", 0.0))

    @elapsed_s.setter
    def elapsed_s(self, value: float) -> None:
        self._db.set_state("elapsed_s", value)

    @property
    def budget_ran_out_at(self) -> float | None:
        """The run's budget (`[loop] budget_usd`) when the run's account last refused a call."""
        stored = self._db.get_state("budget ran out at", None)
        return None if stored is None else float(stored)

    @budget_ran_out_at.setter
    def budget_ran_out_at(self, value: float | None) -> None:
        self._db.set_state("budget ran out at", value)

    def account(self, key: str) -> str | None:
        """The id of the run's account kept under `key`, if one was opened."""
        stored = self._db.get_state(f"account:{key}")
        return None if stored is None else str(stored)

    def set_account(self, key: str, account_id: str) -> None:
        self._db.set_state(f"account:{key}", account_id)
