"""`run.sqlite`: the run's versions, evaluations per problem, meta steps and run state.

SQLite in WAL mode with a busy timeout; one process writes (the `Run` holding the run's lock), others only read.

A version's first evaluation of a problem (repeat 0) is a row of `evaluations`; its later attempts at the same
problem (repeats 1, 2, …, which the loop runs so that one lucky evaluation does not decide) are rows of
`repeat_evaluations`, the same columns plus `repeat`. A separate table rather than a column, so `evaluations`
keeps its shape and its UNIQUE (version, problem_id): runs made before repeats open unchanged (a writer only adds
the empty table; a reader of such a run sees no repeats), and an older sica still reads and writes a newer run's
repeat 0. Each (version, problem, repeat) has one row: a second record replaces the first.

A version row is written `pending` (with the state its validation gave it) before its commit exists and marked
`valid` or `invalid` once it does, so a crash leaves a row `Run.resume_cleanup` can settle.

One module, over 400 lines, because it is one database: its schema, the migration of older runs and the queries
of its four concerns, which share one connection and its transactions.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sica.archive.errors import ArchiveError
from sica.sqlite_migrations import add_missing_columns

#: A problem's result, as a first evaluation and its repeats store it.
_RESULT_COLUMNS = """
    benchmark TEXT NOT NULL,
    part TEXT NOT NULL CHECK (part IN ('selection', 'holdout')),
    status TEXT NOT NULL,
    score REAL NOT NULL,
    cost_usd REAL NOT NULL,
    seconds REAL NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    details TEXT NOT NULL,
    infra INTEGER NOT NULL,
    created_at REAL NOT NULL,
    trace_summary TEXT NOT NULL DEFAULT '',"""
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS versions (
    number INTEGER PRIMARY KEY,
    parent INTEGER REFERENCES versions(number),
    commit_sha TEXT,
    description TEXT NOT NULL,
    change_log TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'valid', 'invalid')),
    settle_as TEXT CHECK (settle_as IN ('valid', 'invalid')),
    invalid_reason TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    version INTEGER NOT NULL REFERENCES versions(number),
    problem_id TEXT NOT NULL,{_RESULT_COLUMNS}
    UNIQUE (version, problem_id)
);
CREATE TABLE IF NOT EXISTS meta_steps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    iteration INTEGER NOT NULL,
    meta_version INTEGER NOT NULL REFERENCES versions(number),
    base_version INTEGER NOT NULL REFERENCES versions(number),
    state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed', 'interrupted')),
    started_at REAL NOT NULL,
    ended_at REAL,
    cost_usd REAL NOT NULL DEFAULT 0,
    result_version INTEGER REFERENCES versions(number),
    error TEXT
);
CREATE TABLE IF NOT EXISTS run_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
#: Tables added since the first release, created (empty) when a writer opens an older run; readers do without.
ADDED_TABLES = f"""
CREATE TABLE IF NOT EXISTS repeat_evaluations (
    version INTEGER NOT NULL REFERENCES versions(number),
    problem_id TEXT NOT NULL,
    repeat INTEGER NOT NULL CHECK (repeat >= 1),{_RESULT_COLUMNS}
    UNIQUE (version, problem_id, repeat)
);
CREATE TABLE IF NOT EXISTS overseer_lines (
    version INTEGER NOT NULL REFERENCES versions(number),
    problem_id TEXT NOT NULL,
    repeat INTEGER NOT NULL,
    line TEXT NOT NULL,
    UNIQUE (version, problem_id, repeat)
);
CREATE TABLE IF NOT EXISTS meta_step_overseer (
    step INTEGER PRIMARY KEY REFERENCES meta_steps(id),
    line TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS overseer_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    version INTEGER REFERENCES versions(number),
    problem_id TEXT,
    repeat INTEGER,
    meta_step INTEGER REFERENCES meta_steps(id),
    ts REAL NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    CHECK ((meta_step IS NULL) = (version IS NOT NULL AND problem_id IS NOT NULL AND repeat IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS overseer_records_of_result ON overseer_records (version, problem_id, repeat);
"""
#: The overseer's line of a meta step.
META_STEP_OVERSEER = "meta_step_overseer"
#: Every finding, judgement and action of the overseer, by the result or the meta step it watched.
OVERSEER_RECORDS = "overseer_records"
#: The overseer's line of a result (a table of its own, so the results' rows of older runs stay as they were).
OVERSEER_LINES = "overseer_lines"
#: The tables every run has (a database without one of them is not a run's).
TABLES = ("versions", "evaluations", "meta_steps", "run_state")
REPEATS = "repeat_evaluations"
#: Columns added since the first release (name → declaration), added to an older run's tables when it is opened.
ADDED_COLUMNS = {"evaluations": {"trace_summary": "TEXT NOT NULL DEFAULT ''"}}


@dataclass(frozen=True)
class Version:
    """One agent version as the run records it."""

    number: int
    parent: int | None
    commit_sha: str | None
    description: str
    change_log: str
    state: str
    settle_as: str | None
    invalid_reason: str | None
    created_at: float


@dataclass(frozen=True)
class Evaluation:
    """One problem's result for one version; `trace_summary` is the harness's account of the attempt; `overseer`
    the overseer's line (empty: none watched; `marked for review` after a tampering judgement); `repeat` which
    attempt at the problem it was (0 the first evaluation, 1, 2, … the repeats)."""

    version: int
    problem_id: str
    benchmark: str
    part: str
    status: str
    score: float
    cost_usd: float
    seconds: float
    input_tokens: int
    output_tokens: int
    details: str
    infra: bool
    created_at: float
    trace_summary: str = ""
    overseer: str = ""
    repeat: int = 0


@dataclass(frozen=True)
class VersionSummary:
    """What selection policies need of a version: lineage, state and its mean selection score over `n` scored
    problems of its first evaluation (repeat 0; infrastructure failures left out; `mean_score` is None when
    nothing is scored yet), and how many of its attempts, of every repeat, were caught tampering with their
    scorers (such a version is never the best). Repeats are left out of `mean_score` so that every version's mean
    is over one attempt a problem, comparable whether or not it was repeated; per-problem means over repeats are
    for the caller to take (`RunDb.evaluations(..., every_repeat=True)`)."""

    number: int
    parent: int | None
    description: str
    state: str
    children: int
    mean_score: float | None
    n: int
    tampered: int = 0


@dataclass(frozen=True)
class MetaStep:
    """One meta-agent step of the loop."""

    id: int
    iteration: int
    meta_version: int
    base_version: int
    state: str
    started_at: float
    ended_at: float | None
    cost_usd: float
    result_version: int | None
    error: str | None
    #: The overseer's line (empty: none watched).
    overseer: str = ""


@dataclass(frozen=True)
class OverseerEntry:
    """One line of an attempt's `overseer.jsonl` (the harness's record, never the agent's): when, what kind
    (finding, judgement, review_ignored, action), and its data as JSON text."""

    ts: float
    type: str
    data: str


class ProblemOutcome(Protocol):
    """How one evaluated problem went, as its utility weighs it (an `Evaluation`, or a result about to be kept):
    its score, cost, charged time, and its status (`timeout` when it timed out). Read-only: a frozen dataclass's
    fields satisfy it."""

    @property
    def score(self) -> float: ...

    @property
    def cost_usd(self) -> float: ...

    @property
    def seconds(self) -> float: ...

    @property
    def status(self) -> str: ...


class ResultLike(ProblemOutcome, Protocol):
    """The fields of a problem's result the run keeps (`runner.results.ProblemResult` has them all), read-only: which
    problem it was, its outcome, and what its attempt used and left."""

    @property
    def problem_id(self) -> str: ...

    @property
    def benchmark(self) -> str: ...

    @property
    def part(self) -> str: ...

    @property
    def input_tokens(self) -> int: ...

    @property
    def output_tokens(self) -> int: ...

    @property
    def details(self) -> str: ...

    @property
    def infra(self) -> bool: ...

    @property
    def trace_summary(self) -> str: ...

    @property
    def overseer(self) -> str: ...


def _fix(path: Path) -> str:
    return f"restore {path} from a backup or start a new run"


class RunDb:
    """The run's SQLite database. `create` makes the tables; otherwise they must be there already."""

    def __init__(self, path: Path, *, create: bool = False, read_only: bool = False) -> None:
        self.path = path
        if not create and not path.is_file():
            raise ArchiveError(f"{path} is missing: not a run folder, or its database is gone; {_fix(path)}")
        uri = f"file:{path}?mode=ro" if read_only else f"file:{path}"
        self._db = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        try:
            if not read_only:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            if create:
                self._db.executescript(SCHEMA + ADDED_TABLES)
            found = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise ArchiveError(f"{path} is not a readable run database ({error}); {_fix(path)}") from None
        if missing := [table for table in TABLES if table not in found]:
            self._db.close()
            raise ArchiveError(f"{path} lacks the tables {', '.join(missing)}: not a run database; {_fix(path)}")
        if not read_only:
            for table, columns in ADDED_COLUMNS.items():
                add_missing_columns(self._db, table, columns)
            self._db.executescript(ADDED_TABLES)

    def close(self) -> None:
        self._db.close()

    def journal_mode(self) -> str:
        return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    # Versions

    def next_version_number(self) -> int:
        return int(self._db.execute("SELECT COALESCE(MAX(number) + 1, 0) FROM versions").fetchone()[0])

    def insert_pending_version(
        self,
        parent: int | None,
        description: str,
        change_log: str,
        settle_as: str | None = None,
        invalid_reason: str | None = None,
    ) -> int:
        """Write the next version's row as `pending`, with the state to settle it as once committed; its number."""
        with self._transaction():
            number = self.next_version_number()
            self._db.execute(
                "INSERT INTO versions (number, parent, description, change_log, state, settle_as, "
                "invalid_reason, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
                (number, parent, description, change_log, settle_as, invalid_reason, time.time()),
            )
        return number

    def mark_version(self, number: int, commit_sha: str, state: str, invalid_reason: str | None = None) -> None:
        """Settle a version: its commit, and whether it is `valid` or `invalid` (with why)."""
        self._db.execute(
            "UPDATE versions SET commit_sha = ?, state = ?, invalid_reason = ? WHERE number = ?",
            (commit_sha, state, invalid_reason, number),
        )

    def delete_version(self, number: int) -> None:
        self._db.execute("DELETE FROM versions WHERE number = ? AND state = 'pending'", (number,))

    def version(self, number: int) -> Version | None:
        row = self._db.execute("SELECT * FROM versions WHERE number = ?", (number,)).fetchone()
        return Version(**dict(row)) if row else None

    def versions(self, state: str | None = None) -> list[Version]:
        args: tuple[object, ...]
        query, args = "SELECT * FROM versions", ()
        if state is not None:
            query, args = query + " WHERE state = ?", (state,)
        return [Version(**dict(row)) for row in self._db.execute(query + " ORDER BY number", args)]

    # Evaluations

    def record_evaluation(
        self, version: int, result: ResultLike, repeat: int = 0, overseer_entries: Sequence[OverseerEntry] = ()
    ) -> None:
        """Store one problem's result as the version's attempt number `repeat` at it (0: its first evaluation),
        with the overseer's record of the attempt; a second record for the same (version, problem, repeat)
        replaces the first (a problem retried after an infrastructure failure keeps its latest result), and leaves
        the other repeats alone. A `tampered` result is never replaced: a version caught tampering once stays
        caught, whatever a rerun of the problem does."""
        if repeat < 0:
            raise ArchiveError(f"repeat {repeat} of agent-{version}: repeats are numbered from 0")
        row: dict[str, object] = {
            "version": version,
            "problem_id": result.problem_id,
            "benchmark": result.benchmark,
            "part": result.part,
            "status": result.status,
            "score": result.score,
            "cost_usd": result.cost_usd,
            "seconds": result.seconds,
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            "details": result.details,
            "infra": int(result.infra),
            "created_at": time.time(),
            "trace_summary": result.trace_summary,
        }
        table, key = "evaluations", ["version", "problem_id"]
        if repeat:
            table, key = REPEATS, [*key, "repeat"]
            row["repeat"] = repeat
        replaced = ", ".join(f"{name} = excluded.{name}" for name in row if name not in key)
        written = self._db.execute(
            f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"
            f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {replaced} WHERE {table}.status != 'tampered'",
            tuple(row.values()),
        )
        if not written.rowcount:
            return  # the tampered record stays, with its overseer line
        where = (version, result.problem_id, repeat)
        self._db.execute(f"DELETE FROM {OVERSEER_RECORDS} WHERE version = ? AND problem_id = ? AND repeat = ?", where)
        self._db.executemany(
            f"INSERT INTO {OVERSEER_RECORDS} (version, problem_id, repeat, ts, type, data) VALUES (?, ?, ?, ?, ?, ?)",
            [(*where, entry.ts, entry.type, entry.data) for entry in overseer_entries],
        )
        if result.overseer:
            self._db.execute(
                f"INSERT INTO {OVERSEER_LINES} (version, problem_id, repeat, line) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (version, problem_id, repeat) DO UPDATE SET line = excluded.line",
                (*where, result.overseer),
            )
        else:  # a result replaced by one no overseer watched keeps no line of the one before
            self._db.execute(f"DELETE FROM {OVERSEER_LINES} WHERE version = ? AND problem_id = ? AND repeat = ?", where)

    def evaluations(self, version: int, part: str | None = None, *, every_repeat: bool = False) -> list[Evaluation]:
        """The version's results (of `part` only, when given) by problem: its first evaluation (repeat 0), or
        with `every_repeat` each problem's repeats after it, in repeat order."""
        found = self._evaluations("evaluations", version, part)
        if every_repeat and self._has_repeats():
            found += self._evaluations(REPEATS, version, part)
            found.sort(key=lambda evaluation: (evaluation.problem_id, evaluation.repeat))
        return found

    def repeats(self, version: int) -> int:
        """How many rounds of evaluation the version has results of: 1 + its highest repeat with a result (0
        when it has none), which is the number its next repeat takes. A repeat may cover only some problems."""
        if self._has_repeats():
            row = self._db.execute(f"SELECT MAX(repeat) FROM {REPEATS} WHERE version = ?", (version,)).fetchone()
            if row[0] is not None:
                return int(row[0]) + 1
        row = self._db.execute("SELECT 1 FROM evaluations WHERE version = ? LIMIT 1", (version,)).fetchone()
        return 1 if row else 0

    def _evaluations(self, table: str, version: int, part: str | None) -> list[Evaluation]:
        args: tuple[object, ...]
        query, args = f"SELECT * FROM {table} WHERE version = ?", (version,)
        if part is not None:
            query, args = query + " AND part = ?", (version, part)
        rows = self._db.execute(query + " ORDER BY problem_id", args).fetchall()
        lines: dict[tuple[str, int], str] = {}
        if self._has_table(OVERSEER_LINES):
            found = self._db.execute(
                f"SELECT problem_id, repeat, line FROM {OVERSEER_LINES} WHERE version = ?", (version,)
            )
            lines = {(row[0], row[1]): row[2] for row in found}
        return [
            Evaluation(
                **{**dict(row), "infra": bool(row["infra"])},
                overseer=lines.get((row["problem_id"], row["repeat"] if table == REPEATS else 0), ""),
            )
            for row in rows
        ]

    def _has_repeats(self) -> bool:
        """Whether the run has the repeats' table: a run made before repeats, opened read-only, has not."""
        return self._has_table(REPEATS)

    def _has_table(self, name: str) -> bool:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return self._db.execute(query, (name,)).fetchone() is not None

    def summary(self) -> list[VersionSummary]:
        """Every version with its number of children, mean selection score of its first evaluation (scored
        problems only) and attempts caught tampering in any repeat (see `VersionSummary`)."""
        tampered = "(SELECT COUNT(*) FROM evaluations e WHERE e.version = v.number AND e.status = 'tampered')"
        if self._has_repeats():
            tampered += f" + (SELECT COUNT(*) FROM {REPEATS} r WHERE r.version = v.number AND r.status = 'tampered')"
        rows = self._db.execute(
            "SELECT v.number, v.parent, v.description, v.state,"
            " (SELECT COUNT(*) FROM versions c WHERE c.parent = v.number) AS children,"
            " (SELECT AVG(e.score) FROM evaluations e WHERE e.version = v.number AND e.part = 'selection'"
            "  AND e.infra = 0) AS mean_score,"
            " (SELECT COUNT(*) FROM evaluations e WHERE e.version = v.number AND e.part = 'selection'"
            f"  AND e.infra = 0) AS n, {tampered} AS tampered"
            " FROM versions v ORDER BY v.number"
        )
        return [VersionSummary(**dict(row)) for row in rows]

    def ledger_spent_usd(self) -> float | None:
        """What the run's gateway has charged in all, from its ledger (which shares this database: every account
        in it is the run's); None before the gateway first opened it."""
        try:
            row = self._db.execute("SELECT COALESCE(SUM(cost_nano), 0) FROM calls WHERE status != 'pending'").fetchone()
        except sqlite3.OperationalError:
            return None
        return float(row[0]) / 1e9

    # Meta steps

    def start_meta_step(self, iteration: int, meta_version: int, base_version: int) -> int:
        cursor = self._db.execute(
            "INSERT INTO meta_steps (iteration, meta_version, base_version, state, started_at)"
            " VALUES (?, ?, ?, 'running', ?)",
            (iteration, meta_version, base_version, time.time()),
        )
        return int(cursor.lastrowid or 0)

    def end_meta_step(
        self,
        step: int,
        state: str,
        cost_usd: float,
        result_version: int | None = None,
        error: str | None = None,
        overseer: str = "",
        overseer_entries: Sequence[OverseerEntry] = (),
    ) -> None:
        """End the step's row, with the overseer's line and record of it."""
        self._db.execute(f"DELETE FROM {OVERSEER_RECORDS} WHERE meta_step = ?", (step,))
        self._db.executemany(
            f"INSERT INTO {OVERSEER_RECORDS} (meta_step, ts, type, data) VALUES (?, ?, ?, ?)",
            [(step, entry.ts, entry.type, entry.data) for entry in overseer_entries],
        )
        self._db.execute(
            "UPDATE meta_steps SET state = ?, ended_at = ?, cost_usd = ?, result_version = ?, error = ? WHERE id = ?",
            (state, time.time(), cost_usd, result_version, error, step),
        )
        if overseer:
            self._db.execute(
                f"INSERT OR REPLACE INTO {META_STEP_OVERSEER} (step, line) VALUES (?, ?)", (step, overseer)
            )

    def meta_steps(self, state: str | None = None) -> list[MetaStep]:
        args: tuple[object, ...]
        query, args = "SELECT * FROM meta_steps", ()
        if state is not None:
            query, args = query + " WHERE state = ?", (state,)
        lines: dict[int, str] = {}
        if self._has_table(META_STEP_OVERSEER):
            lines = dict(self._db.execute(f"SELECT step, line FROM {META_STEP_OVERSEER}").fetchall())
        rows = self._db.execute(query + " ORDER BY id", args)
        return [MetaStep(**dict(row), overseer=lines.get(row["id"], "")) for row in rows]

    def overseer_entries(
        self,
        *,
        version: int | None = None,
        problem_id: str | None = None,
        repeat: int = 0,
        meta_step: int | None = None,
    ) -> list[OverseerEntry]:
        """The overseer's record of one result (`version`, `problem_id`, `repeat`) or of one meta step, oldest
        first; none for a run made before the table."""
        if not self._has_table(OVERSEER_RECORDS):
            return []
        args: tuple[object, ...]
        if meta_step is not None:
            query, args = "meta_step = ?", (meta_step,)
        else:
            query, args = "version = ? AND problem_id = ? AND repeat = ?", (version, problem_id, repeat)
        rows = self._db.execute(f"SELECT ts, type, data FROM {OVERSEER_RECORDS} WHERE {query} ORDER BY id", args)
        return [OverseerEntry(*row) for row in rows]

    # Run state

    def get_state(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM run_state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_state(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO run_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error), for a read-then-write that must not interleave."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
