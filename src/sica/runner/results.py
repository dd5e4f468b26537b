"""Evaluation results: one record per (agent, problem), kept in SQLite (the cache a rerun reuses) and in each
evaluation's JSONL file (everything it reported, cached results and infrastructure failures included).

A result is reused when its key matches: the hash of the agent's code, the problem (id, statement and the
fingerprint of its hidden material and scorer), the models with their configuration, the limits the problem
ran under, and for a repeat (a further attempt at the same problem, 1, 2, …) its number. So a repeat is a fresh
attempt, not the first one's result again, and a repeat run again after a crash reuses its own results; the
first attempt's key has no repeat in it, as before repeats existed, so stores made then stay valid.
Infrastructure failures and tampered attempts are never cached, whatever the repeat, so a rerun tries those
problems again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from sica.benchmarks.base import Problem
from sica.config import ModelAlias
from sica.runner.attempt import AttemptLimits
from sica.sqlite_migrations import add_missing_columns
from sica.workspace.trees import SKIPPED

#: The status of an attempt caught attacking its scorer (`Score.tampered`).
TAMPERED = "tampered"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    agent_hash TEXT NOT NULL,
    problem_id TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    score REAL NOT NULL,
    details TEXT NOT NULL,
    cost_usd REAL NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    seconds REAL NOT NULL,
    queued_s REAL NOT NULL,
    tries INTEGER NOT NULL,
    eval_id TEXT NOT NULL,
    folder TEXT NOT NULL,
    finished_at REAL NOT NULL,
    trace_summary TEXT NOT NULL DEFAULT '',
    overseer TEXT NOT NULL DEFAULT ''
);
"""


@dataclass(frozen=True)
class ProblemResult:
    """What one problem came to. `seconds` is the time charged to it: wall time less its calls' queueing in
    the gateway. `trace_summary` is the harness's account of the attempt (`runner.trace_summary`); `overseer` the
    overseer's one-line summary (empty: none watched; it says `marked for review` after a tampering judgement,
    which never changes the score). `infra` marks
    an infrastructure failure that outlived its retries: reported, never scored. Status `tampered` marks an
    attempt its scorer caught attacking it: scored 0, never cached."""

    key: str
    problem_id: str
    benchmark: str
    part: str
    status: str
    score: float
    details: str
    cost_usd: float
    input_tokens: int
    output_tokens: int
    seconds: float
    queued_s: float
    tries: int
    folder: str
    trace_summary: str = ""
    overseer: str = ""
    infra: bool = False
    cached: bool = False


def agent_code_hash(agent_dir: Path) -> str:
    """A digest of what the agent version runs: one record per file (its path, kind, whether it is executable,
    and the sha256 of its contents), so that no two trees share a digest; caches and environments left out,
    but a `.pyc` outside `__pycache__` counted (Python imports it when its source is missing). A link is
    digested as the link it is (its target's name), never followed: a version's link to a host file must not
    make the harness read that file, nor its changes change the version's identity."""
    digest = hashlib.sha256()
    for path in sorted(agent_dir.rglob("*")):
        relative = path.relative_to(agent_dir)
        if any(part in SKIPPED for part in relative.parts):
            continue
        if path.is_symlink():
            record: list[str | bool] = [str(relative), "link", os.fsdecode(os.readlink(path))]
        elif path.is_file():
            record = [
                str(relative),
                "file",
                bool(path.stat().st_mode & 0o111),
                hashlib.sha256(path.read_bytes()).hexdigest(),
            ]
        else:
            continue
        digest.update(json.dumps(record).encode() + b"\n")
    return digest.hexdigest()


def models_fingerprint(aliases: Mapping[str, ModelAlias], models: Mapping[str, Mapping[str, object]]) -> dict[str, Any]:
    """The models an agent uses (`models`, per role), with the configuration of their `aliases` that shapes their
    answers (never keys); a scripted alias's script by its content."""
    described: dict[str, Any] = {}
    for role, entry in sorted(models.items()):
        alias = aliases[str(entry["alias"])]
        config = alias.model_dump(
            mode="json",
            exclude={
                "api_key",
                "api_key_env",
                "script",
                "timeout_s",
                "max_concurrent",
                "requests_per_minute",
                "tokens_per_minute",
            },
        )
        if alias.script is not None:
            config["script_sha256"] = hashlib.sha256(alias.script.read_bytes()).hexdigest()
        described[role] = {"alias": entry["alias"], **config}
    return described


def result_key(
    agent_hash: str,
    problem: Problem,
    models: Mapping[str, Any],
    limits: AttemptLimits,
    repeat: int = 0,
    *,
    overseer: Mapping[str, Any] | None = None,
) -> str:
    """The cache key of (agent code, problem, models, limits, repeat, the overseer that watched, since it may cut
    an attempt short); repeat 0 and no overseer are left out of the material, so their keys are those made before
    repeats and overseers."""
    material: dict[str, Any] = {
        "agent": agent_hash,
        "problem": problem.id,
        "statement": hashlib.sha256(problem.statement.encode()).hexdigest(),
        "fingerprint": problem.fingerprint,
        "models": models,
        "limits": asdict(limits),
    }
    if repeat:
        material["repeat"] = repeat
    if overseer is not None:
        material["overseer"] = overseer
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class ResultStore:
    """The SQLite cache of finished results (WAL, busy timeout: several evaluations may share it)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        add_missing_columns(
            self._db, "results", {"trace_summary": "TEXT NOT NULL DEFAULT ''", "overseer": "TEXT NOT NULL DEFAULT ''"}
        )

    def close(self) -> None:
        self._db.close()

    def cached(self, keys: Iterable[str]) -> dict[str, sqlite3.Row]:
        """The stored results among `keys`."""
        wanted = list(keys)
        found: dict[str, sqlite3.Row] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._db.execute(f"SELECT * FROM results WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            found.update((row["key"], row) for row in rows)
        return found

    def put(self, result: ProblemResult, agent_hash: str, model: str, eval_id: str) -> None:
        """Store a scored result (infrastructure failures and tampered attempts are not stored: neither is a
        score)."""
        if result.infra or result.status == TAMPERED:
            return
        self._db.execute(
            "INSERT OR REPLACE INTO results (key, agent_hash, problem_id, model, status, score, details, cost_usd,"
            " input_tokens, output_tokens, seconds, queued_s, tries, eval_id, folder, finished_at, trace_summary,"
            " overseer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                result.key,
                agent_hash,
                result.problem_id,
                model,
                result.status,
                result.score,
                result.details,
                result.cost_usd,
                result.input_tokens,
                result.output_tokens,
                result.seconds,
                result.queued_s,
                result.tries,
                eval_id,
                result.folder,
                time.time(),
                result.trace_summary,
                result.overseer,
            ),
        )


def from_cache(row: sqlite3.Row, benchmark: str, part: str) -> ProblemResult:
    """A stored result as this evaluation reports it."""
    names = {f.name for f in fields(ProblemResult)} - {"benchmark", "part", "infra", "cached"}
    return ProblemResult(**{name: row[name] for name in names}, benchmark=benchmark, part=part, cached=True)


class ResultLog:
    """An evaluation's JSONL file: one line per result, flushed as each arrives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, result: ProblemResult) -> None:
        with self.path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(asdict(result)) + "\n")
