"""The runs under `[loop] runs_dir`, read-only: their names and folders, status, budget and their line in the runs
list. A run is opened with `Run.open(read_only=True)` (no lock, nothing settled), any other SQLite file through a
`mode=ro` URI, and whether a run is running is read off `/proc/locks` (the writer holds `run.lock` with
`flock`), never by trying the lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sica.archive import ArchiveError, Run
from sica.archive.run import DATABASE, LOCK
from sica.config import UtilitySettings
from sica.loop.comparison import best_version
from sica.loop.evaluation import selection_mix, standings
from sica.loop.run_state import RunState

RUNNING = "running"
FINISHED = "finished"
HALTED = "halted"


@dataclass(frozen=True)
class RunListing:
    """One run in the runs list."""

    name: str
    status: str
    spent_usd: float
    budget_usd: float | None
    versions: int
    iterations: int
    best: int | None
    best_utility: float | None
    error: str | None = None


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to an SQLite file (a `mode=ro` URI: never a write, never a journal of ours)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10, check_same_thread=False)
    db.row_factory = sqlite3.Row
    return db


def run_names(runs_dir: Path) -> list[str]:
    """The run folders under `runs_dir` (those with a `run.sqlite`), newest first."""
    if not runs_dir.is_dir():
        return []
    found = [entry for entry in runs_dir.iterdir() if (entry / DATABASE).is_file()]
    return [entry.name for entry in sorted(found, key=lambda entry: (-entry.stat().st_mtime, entry.name))]


def run_folder(runs_dir: Path, name: str) -> Path:
    """The folder of run `name` under `runs_dir`, or a one-line error naming the runs there are."""
    if name in run_names(runs_dir):
        return runs_dir / name
    known = ", ".join(run_names(runs_dir)[:10]) or "none yet"
    raise ArchiveError(f"no run {name!r} under {runs_dir} (runs there: {known}): name one of them")


@contextmanager
def open_run(folder: Path) -> Iterator[Run]:
    """The run opened read-only (no lock, nothing changed)."""
    with Run.open(folder, read_only=True) as run:
        yield run


def is_locked(path: Path) -> bool:
    """Whether some process holds an `flock` on `path`, read off `/proc/locks` without taking the lock."""
    try:
        inode = path.stat().st_ino
        locks = Path("/proc/locks").read_text()
    except OSError:
        return False
    for line in locks.splitlines():
        fields = line.split()
        ids = next((field for field in fields if field.count(":") == 2), None)
        if ids is not None and ids.rsplit(":", 1)[1] == str(inode):
            return True
    return False


def run_status(run: Run) -> str:
    """`running` while a writer holds the run's lock; `halted` when a budget ran out or the last planned iteration
    is not done; else `finished`."""
    if is_locked(run.folder / LOCK):
        return RUNNING
    state = RunState(run.db)
    plan = state.plan
    if state.budget_ran_out_at is not None or (plan is not None and plan.iteration > state.iteration):
        return HALTED
    if not state.agent_0_evaluated:
        return HALTED
    return FINISHED


def run_budget_usd(run: Run) -> float | None:
    """The run's money budget: the limit on its gateway account (None: no limit, or no gateway yet)."""
    account = RunState(run.db).account("run")
    if account is None:
        return None
    with closing(connect_read_only(run.db.path)) as db:
        try:
            row = db.execute("SELECT limit_nano FROM accounts WHERE id = ?", (account,)).fetchone()
        except sqlite3.OperationalError:
            return None
    return None if row is None or row["limit_nano"] is None else row["limit_nano"] / 1e9


def database_stamp(folder: Path) -> tuple[int, int, int, int]:
    """When the run's database (and its write-ahead log) last changed: their modification times and sizes."""
    stamp = []
    for name in (DATABASE, DATABASE + "-wal"):
        try:
            stat = (folder / name).stat()
            stamp += [stat.st_mtime_ns, stat.st_size]
        except OSError:
            stamp += [0, 0]
    return stamp[0], stamp[1], stamp[2], stamp[3]


#: Each run's best version and recorded cost as of its database's stamp: the runs list reads a run again only
#: when it changed.
_standing: dict[Path, tuple[tuple[int, int, int, int], int | None, float | None, float]] = {}


def list_run(folder: Path, weights: UtilitySettings) -> RunListing:
    """A run's line in the runs list; a run that cannot be read gets a line with the reason."""
    try:
        with open_run(folder) as run:
            state = RunState(run.db)
            stamp = database_stamp(folder)
            known = _standing.get(folder)
            if known is None or known[0] != stamp:
                best = best_version(standings(run, state.utility_weights(weights)), frozenset(selection_mix(run)))
                recorded = sum(e.cost_usd for v in run.versions() for e in run.evaluations(v.number, every_repeat=True))
                known = (stamp, best.number if best else None, best.utility if best else None, recorded)
                _standing[folder] = known
            spent = run.db.ledger_spent_usd()
            return RunListing(
                folder.name,
                run_status(run),
                spent if spent is not None else known[3],
                run_budget_usd(run),
                len(run.versions()),
                state.iteration,
                known[1],
                known[2],
            )
    except (ArchiveError, sqlite3.Error) as error:
        return RunListing(folder.name, "unreadable", 0.0, None, 0, 0, None, None, str(error))
