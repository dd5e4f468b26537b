"""Filling a run folder in tests: a problem's result as an evaluation records it, and an edited version's code; and
reading what its database holds."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sica.archive import Run


@dataclass(frozen=True)
class Result:
    """The fields of a problem's result that `Run.record_evaluation` reads, with everyday defaults."""

    problem_id: str
    score: float
    part: str = "selection"
    benchmark: str = "toy"
    status: str = "scored"
    cost_usd: float = 0.01
    seconds: float = 2.0
    input_tokens: int = 100
    output_tokens: int = 20
    details: str = ""
    infra: bool = False
    trace_summary: str = ""


def edited(run: Run, version: int, dest: Path, line: str) -> Path:
    """A checkout of `version` with `line` appended to its CHANGELOG.md."""
    run.checkout(version, dest)
    with (dest / "CHANGELOG.md").open("a", encoding="utf-8") as changelog:
        changelog.write(line + "\n")
    return dest


def database_content(run_folder: Path) -> list[str]:
    """Everything the run's `run.sqlite` holds, as SQL statements (its write-ahead log included), to tell whether
    a command changed it."""
    db = sqlite3.connect(f"file:{run_folder / 'run.sqlite'}?mode=ro", uri=True)
    try:
        return list(db.iterdump())
    finally:
        db.close()
