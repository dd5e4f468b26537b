"""Budget accounts in a tree (run → iteration → problem / meta step / overseer) and worst-case reservations.

A call goes upstream only if its worst case fits what its account and every ancestor have left. The output
cap is clamped to what the tightest of them can still pay for, that worst case is reserved while the call
runs, and the reservation is replaced by the real usage afterwards. Reserving and settling are plain
synchronous code under one lock, so concurrent calls cannot jointly overshoot a limit.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass, field

from sica.gateway.pricing import Pricer, max_affordable_output, nano_to_usd
from sica.gateway.usage import TokenUsage


def token_digest(token: str) -> str:
    """Tokens are stored only as digests: the ledger cannot be used to spend from an account."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "sica-" + secrets.token_urlsafe(24)


@dataclass
class Account:
    """A budget: limits (None = unlimited), the model aliases it may call (None = its parent's, or every alias the
    gateway serves for a top account), settled spend, what calls in flight have reserved, and how many calls its
    limits refused since this gateway started."""

    id: str
    name: str
    parent_id: str | None
    limit_nano: int | None = None
    limit_tokens: int | None = None
    spent_nano: int = 0
    spent_tokens: int = 0
    reserved_nano: int = 0
    reserved_tokens: int = 0
    refused: int = 0
    aliases: frozenset[str] | None = None

    def left_nano(self) -> int | None:
        return None if self.limit_nano is None else self.limit_nano - self.spent_nano - self.reserved_nano

    def left_tokens(self) -> int | None:
        return None if self.limit_tokens is None else self.limit_tokens - self.spent_tokens - self.reserved_tokens


@dataclass(frozen=True)
class Reservation:
    """The worst case of one call, held against its account and every ancestor until settled."""

    chain: tuple[str, ...]
    max_output: int
    cost_nano: int
    tokens: int


@dataclass
class BudgetExceeded(Exception):
    """No output the account chain can pay for; names the account whose limit binds."""

    account: Account
    needed_nano: int
    unit: str = field(default="usd")

    def __str__(self) -> str:
        a = self.account
        if self.unit == "tokens":
            return (
                f"budget exceeded: account '{a.name}' has used {a.spent_tokens} of its {a.limit_tokens} tokens "
                f"({a.reserved_tokens} reserved by calls in flight)"
            )
        return (
            f"budget exceeded: account '{a.name}' has spent ${nano_to_usd(a.spent_nano):.6f} of its "
            f"${nano_to_usd(a.limit_nano or 0):.6f} limit (${nano_to_usd(a.reserved_nano):.6f} reserved by calls "
            f"in flight); this request needs at least ${nano_to_usd(self.needed_nano):.6f}"
        )


class AccountTree:
    """All accounts, by id and by token digest. Thread-safe: the harness may open accounts from other threads."""

    def __init__(self) -> None:
        self._by_id: dict[str, Account] = {}
        self._by_digest: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, account: Account, digest: str | None) -> None:
        with self._lock:
            if account.parent_id is not None and account.parent_id not in self._by_id:
                raise KeyError(f"parent account {account.parent_id} does not exist")
            self._by_id[account.id] = account
            if digest is not None:
                self._by_digest[digest] = account.id

    def get(self, account_id: str) -> Account:
        return self._by_id[account_id]

    def __contains__(self, account_id: object) -> bool:
        return account_id in self._by_id

    def by_token(self, token: str) -> Account | None:
        account_id = self._by_digest.get(token_digest(token))
        return None if account_id is None else self._by_id[account_id]

    def set_token(self, account_id: str, digest: str) -> None:
        with self._lock:
            self._by_digest[digest] = account_id

    def chain(self, account_id: str) -> list[Account]:
        """The account and its ancestors, nearest first."""
        accounts = []
        current: str | None = account_id
        while current is not None:
            account = self._by_id[current]
            accounts.append(account)
            current = account.parent_id
        return accounts

    def allowed_aliases(self, account_id: str, served: frozenset[str]) -> frozenset[str]:
        """The aliases an account may call: those of `served` that it and every ancestor allow."""
        allowed = served
        for account in self.chain(account_id):
            if account.aliases is not None:
                allowed &= account.aliases
        return allowed

    def reserve(
        self, account_id: str, pricer: Pricer, input_tokens: int, requested_output: int, min_output: int
    ) -> Reservation:
        """Reserve the worst case of a call, clamping its output to what the chain can pay for."""
        with self._lock:
            chain = self.chain(account_id)
            max_output = requested_output
            for account in chain:
                left_tokens = account.left_tokens()
                if left_tokens is not None and left_tokens - input_tokens < min(min_output, max_output):
                    account.refused += 1
                    raise BudgetExceeded(account, 0, unit="tokens")
                if left_tokens is not None:
                    max_output = min(max_output, left_tokens - input_tokens)
                left_nano = account.left_nano()
                if left_nano is not None:
                    affordable = max_affordable_output(pricer, input_tokens, left_nano)
                    if affordable < min(min_output, max_output):
                        needed = pricer.cost(TokenUsage(input=input_tokens, output=min(min_output, max_output)))
                        account.refused += 1
                        raise BudgetExceeded(account, needed)
                    max_output = min(max_output, affordable)
            cost = pricer.cost(TokenUsage(input=input_tokens, output=max_output))
            tokens = input_tokens + max_output
            for account in chain:
                account.reserved_nano += cost
                account.reserved_tokens += tokens
            return Reservation(tuple(a.id for a in chain), max_output, cost, tokens)

    def settle(self, reservation: Reservation, cost_nano: int, tokens: int) -> None:
        """Replace a reservation by what the call really cost."""
        with self._lock:
            for account_id in reservation.chain:
                account = self._by_id[account_id]
                account.reserved_nano -= reservation.cost_nano
                account.reserved_tokens -= reservation.tokens
                account.spent_nano += cost_nano
                account.spent_tokens += tokens

    def charge(self, account_id: str, cost_nano: int, tokens: int) -> None:
        """Add spend recorded earlier (loading the ledger) to an account and its ancestors."""
        with self._lock:
            for account in self.chain(account_id):
                account.spent_nano += cost_nano
                account.spent_tokens += tokens
