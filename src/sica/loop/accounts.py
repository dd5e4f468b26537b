"""The run's budget accounts on its gateway: the run's own (holding the run's budget), and one an iteration (its
meta step and evaluations are charged below it). Each is kept in the run's state, so it outlives a crash with its
spend (the ledger is in the run's `run.sqlite`)."""

from __future__ import annotations

from dataclasses import dataclass

from sica.gateway import Gateway
from sica.gateway.accounts import Account
from sica.gateway.pricing import nano_to_usd
from sica.loop.run_state import RunState


@dataclass
class RunAccounts:
    """The loop's one way to its accounts: opening them, and reading their spend and refusals."""

    gateway: Gateway
    state: RunState
    run_id: str

    @classmethod
    def open(cls, gateway: Gateway, state: RunState, name: str, budget_usd: float | None) -> RunAccounts:
        """The run's accounts, the run's own opened (or reopened) as `name` with the run's budget."""
        accounts = cls(gateway, state, "")
        accounts.run_id = accounts.kept("run", name, None, budget_usd)
        return accounts

    def kept(self, key: str, name: str, parent: str | None, limit_usd: float | None) -> str:
        """A budget account of the run that outlives a crash: the one stored under `key` (with its spend, from the
        ledger; its limit as configured now), else a new one."""
        stored = self.state.account(key)
        if stored is not None and stored in self.gateway.accounts:
            self.gateway.set_limit(stored, limit_usd)
            return stored
        account_id = self.gateway.open_account(name, parent=parent, limit_usd=limit_usd).id
        self.state.set_account(key, account_id)
        return account_id

    def iteration(self, number: int) -> str:
        """Iteration `number`'s account (0: agent 0's evaluation), below the run's."""
        return self.kept(f"iteration-{number}", f"iteration {number}", self.run_id, None)

    def account(self, account_id: str) -> Account:
        """The live state of one of the run's accounts."""
        return self.gateway.account(account_id)

    @property
    def run(self) -> Account:
        """The live state of the run's own account."""
        return self.account(self.run_id)

    def spent_usd(self, account_id: str) -> float:
        return nano_to_usd(self.account(account_id).spent_nano)
