"""The ledger: every account and every call in SQLite, written before a call goes upstream and settled after.

A row starts `pending` with its reservation; it is settled with the real usage (`ok`), as an error, or as
`truncated`. A gateway that died mid-call leaves pending rows behind: the next gateway to open the ledger settles
them at their reserved worst case (status `interrupted`), since the upstream may well have charged for them.
Several gateways may share a ledger: each holds a lock file while it lives, and only rows whose owner's lock is
free (the owner is gone) are settled.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sica.gateway.accounts import Account, AccountTree
from sica.gateway.usage import TokenUsage
from sica.sqlite_migrations import add_missing_columns

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    parent_id TEXT REFERENCES accounts(id),
    name TEXT NOT NULL,
    token_sha256 TEXT UNIQUE,
    limit_nano INTEGER,
    limit_tokens INTEGER,
    created_at REAL NOT NULL,
    aliases TEXT
);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    alias TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    stream INTEGER NOT NULL,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    http_status INTEGER,
    error_class TEXT,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost_nano INTEGER NOT NULL DEFAULT 0,
    reserved_nano INTEGER NOT NULL,
    reserved_tokens INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    queued_s REAL NOT NULL DEFAULT 0,
    upstream_s REAL NOT NULL DEFAULT 0,
    started_at REAL NOT NULL,
    ended_at REAL,
    request_body TEXT,
    response_body TEXT
);
CREATE INDEX IF NOT EXISTS calls_by_account ON calls(account_id);
CREATE INDEX IF NOT EXISTS calls_pending ON calls(status) WHERE status = 'pending';
"""


@dataclass(frozen=True)
class CallOutcome:
    """How a call ended, as the ledger records it."""

    status: str
    usage: TokenUsage
    cost_nano: int
    http_status: int | None
    error_class: str | None
    attempts: int
    queued_s: float
    upstream_s: float
    response_body: str | None


@dataclass(frozen=True)
class SpendRow:
    """Spend of one account on one alias, for `sica gateway --ledger`."""

    account: str
    alias: str
    model: str
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_nano: int


def _hold_lock(path: Path) -> int | None:
    """An exclusive lock on `path` (created if needed) held until its descriptor closes; None if held elsewhere."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class _Checkpointer(threading.Thread):
    """Copies the write-ahead log into the database every `interval_s`, off the gateway's event loop."""

    def __init__(self, path: Path, interval_s: float = 1.0) -> None:
        super().__init__(name="ledger-checkpoint", daemon=True)
        self._path = path
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self.start()

    def run(self) -> None:
        db = sqlite3.connect(self._path, timeout=30)
        try:
            while not self._stopping.wait(self._interval_s):
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()

    def stop(self) -> None:
        self._stopping.set()
        self.join()


class Ledger:
    """One SQLite database (WAL, busy timeout) with one writer: this gateway."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.owner = uuid.uuid4().hex
        self._owners_dir = path.with_name(path.name + ".owners")
        self._owners_dir.mkdir(exist_ok=True)
        owner_lock = _hold_lock(self._owners_dir / self.owner)
        assert owner_lock is not None
        self._owner_lock = owner_lock
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        add_missing_columns(self._db, "accounts", {"aliases": "TEXT"})
        # Checkpoints (which fsync) run in a thread of their own, not inside a commit on the event loop.
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._checkpointer = _Checkpointer(path)

    def close(self) -> None:
        self._checkpointer.stop()
        with self._lock:
            self._db.close()
        os.close(self._owner_lock)
        (self._owners_dir / self.owner).unlink(missing_ok=True)

    def add_account(self, account: Account, digest: str | None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO accounts (id, parent_id, name, token_sha256, limit_nano, limit_tokens, created_at, "
                "aliases) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    account.id,
                    account.parent_id,
                    account.name,
                    digest,
                    account.limit_nano,
                    account.limit_tokens,
                    time.time(),
                    _aliases_column(account.aliases),
                ),
            )

    def update_account(self, account: Account, digest: str | None) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE accounts SET token_sha256 = ?, limit_nano = ?, limit_tokens = ?, aliases = ? WHERE id = ?",
                (digest, account.limit_nano, account.limit_tokens, _aliases_column(account.aliases), account.id),
            )

    def set_limits(self, account: Account) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE accounts SET limit_nano = ?, limit_tokens = ? WHERE id = ?",
                (account.limit_nano, account.limit_tokens, account.id),
            )

    def account_id_by_digest(self, digest: str) -> str | None:
        row = self._db.execute("SELECT id FROM accounts WHERE token_sha256 = ?", (digest,)).fetchone()
        return None if row is None else row[0]

    def settle_interrupted(self) -> int:
        """Settle rows that gateways now gone left pending, at their reserved worst case; returns how many."""
        owners = [
            row[0]
            for row in self._db.execute(
                "SELECT DISTINCT owner FROM calls WHERE status = 'pending' AND owner != ?", (self.owner,)
            )
        ]
        settled = 0
        for owner in owners:
            lock = _hold_lock(self._owners_dir / owner)
            if lock is None:
                continue  # that gateway is still running
            with self._lock:
                settled += self._db.execute(
                    "UPDATE calls SET status = 'interrupted', error_class = 'gateway_died', cost_nano = reserved_nano,"
                    " ended_at = ? WHERE status = 'pending' AND owner = ?",
                    (time.time(), owner),
                ).rowcount
            os.close(lock)
            (self._owners_dir / owner).unlink(missing_ok=True)
        return settled

    def load_into(self, tree: AccountTree) -> None:
        """Fill `tree` with every stored account and its settled spend."""
        rows = self._db.execute(
            "SELECT id, parent_id, name, token_sha256, limit_nano, limit_tokens, aliases FROM accounts ORDER BY rowid"
        ).fetchall()
        for account_id, parent_id, name, digest, limit_nano, limit_tokens, aliases in rows:
            allowed = None if aliases is None else frozenset(json.loads(aliases))
            tree.add(Account(account_id, name, parent_id, limit_nano, limit_tokens, aliases=allowed), digest)
        spend = self._db.execute(
            "SELECT account_id, SUM(cost_nano), SUM(input_tokens + output_tokens) FROM calls "
            "WHERE status != 'pending' GROUP BY account_id"
        ).fetchall()
        for account_id, cost, tokens in spend:
            tree.charge(account_id, cost, tokens)

    def begin_call(
        self,
        account_id: str,
        alias: str,
        provider: str,
        model: str,
        stream: bool,
        reserved_nano: int,
        reserved_tokens: int,
        request_body: str | None,
    ) -> int:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO calls (account_id, alias, provider, model, stream, owner, status, reserved_nano, "
                "reserved_tokens, started_at, request_body) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
                (
                    account_id,
                    alias,
                    provider,
                    model,
                    int(stream),
                    self.owner,
                    reserved_nano,
                    reserved_tokens,
                    time.time(),
                    request_body,
                ),
            )
            return int(cursor.lastrowid or 0)

    def end_call(self, call_id: int, outcome: CallOutcome) -> None:
        u = outcome.usage
        with self._lock:
            self._db.execute(
                "UPDATE calls SET status = ?, http_status = ?, error_class = ?, input_tokens = ?, "
                "cache_read_tokens = ?, cache_write_tokens = ?, output_tokens = ?, cost_nano = ?, attempts = ?, "
                "queued_s = ?, upstream_s = ?, ended_at = ?, response_body = ? WHERE id = ?",
                (
                    outcome.status,
                    outcome.http_status,
                    outcome.error_class,
                    u.input,
                    u.cache_read,
                    u.cache_write,
                    u.output,
                    outcome.cost_nano,
                    outcome.attempts,
                    outcome.queued_s,
                    outcome.upstream_s,
                    time.time(),
                    outcome.response_body,
                    call_id,
                ),
            )

    def calls(self, account_id: str | None = None) -> Iterator[sqlite3.Row]:
        """Ledger rows, oldest first (all, or one account's)."""
        cursor = self._db.cursor()
        cursor.row_factory = sqlite3.Row
        if account_id is None:
            return iter(cursor.execute("SELECT * FROM calls ORDER BY id").fetchall())
        return iter(cursor.execute("SELECT * FROM calls WHERE account_id = ? ORDER BY id", (account_id,)).fetchall())

    def spend_by_account_and_alias(self) -> list[SpendRow]:
        rows = self._db.execute(
            "SELECT a.name, c.alias, c.model, COUNT(*), SUM(c.status NOT IN ('ok', 'pending')), "
            "SUM(c.input_tokens), SUM(c.output_tokens), SUM(c.cost_nano) FROM calls c "
            "JOIN accounts a ON a.id = c.account_id GROUP BY a.id, c.alias, c.model "
            "ORDER BY a.rowid, c.alias"
        ).fetchall()
        return [SpendRow(*row) for row in rows]


def _aliases_column(aliases: frozenset[str] | None) -> str | None:
    """An account's aliases as stored: a sorted JSON list, or NULL for its parent's."""
    return None if aliases is None else json.dumps(sorted(aliases))
