"""What the viewer reads, read-only: the runs under `[loop] runs_dir` with their status, an attempt's folder, its
events, overseer record and the ledger rows of its account (`links.py` finds the attempt behind a run's result).

Nothing here takes the loop's lock or writes: a run is opened with `Run.open(read_only=True)`, every other SQLite
file with a `mode=ro` URI, and files the agent wrote (its events) through `sica.events.EventReader`, which reads
only regular files, never through a link. Whether a run is running is read off `/proc/locks` (the writer holds
`run.lock` with `flock`), never by trying the lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sica.archive import ArchiveError, Run
from sica.archive.run import DATABASE, LOCK
from sica.config import UtilitySettings
from sica.events import Event, EventReader
from sica.loop.comparison import best_version
from sica.loop.evaluation import selection_mix, standings
from sica.loop.run_state import RunState
from sica.overseer.record import read_record

RUNNING = "running"
FINISHED = "finished"
HALTED = "halted"
#: Where attempts live, by the name the viewer's addresses give them.
SOURCES = ("runs", "evals", "solves")


@dataclass(frozen=True)
class Sources:
    """The folders the viewer reads: `[loop] runs_dir`, `[eval] results_dir` and `[solve] solves_dir`."""

    runs_dir: Path
    results_dir: Path
    solves_dir: Path

    def root(self, source: str) -> Path:
        return {"runs": self.runs_dir, "evals": self.results_dir, "solves": self.solves_dir}[source]


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


def list_run(folder: Path, weights: UtilitySettings) -> RunListing:
    """A run's line in the runs list; a run that cannot be read gets a line with the reason."""
    try:
        with open_run(folder) as run:
            state = RunState(run.db)
            weights = state.utility_weights(weights)
            best = best_version(standings(run, weights), frozenset(selection_mix(run)))
            recorded = sum(e.cost_usd for v in run.versions() for e in run.evaluations(v.number, every_repeat=True))
            spent = run.db.ledger_spent_usd()
            return RunListing(
                folder.name,
                run_status(run),
                spent if spent is not None else recorded,
                run_budget_usd(run),
                len(run.versions()),
                state.iteration,
                best.number if best else None,
                best.utility if best else None,
            )
    except (ArchiveError, sqlite3.Error) as error:
        return RunListing(folder.name, "unreadable", 0.0, None, 0, 0, None, None, str(error))


def attempt_folder(sources: Sources, source: str, relative: str) -> Path:
    """The attempt folder `relative` under the source's root, refused when it leads out of the root or is no
    attempt (no `outcome.json`, `live.json` or `logdir`)."""
    if source not in SOURCES:
        raise ArchiveError(f"unknown attempt source {source!r}: use one of {', '.join(SOURCES)}")
    root = sources.root(source).resolve()
    folder = (root / relative).resolve()
    if not folder.is_relative_to(root) or ".." in Path(relative).parts:
        raise ArchiveError(f"{relative!r} is outside {root}: give an attempt folder under it")
    if not any((folder / name).exists() for name in ("outcome.json", "live.json", "logdir")):
        raise ArchiveError(f"{folder} is not an attempt folder (no outcome.json, live.json or logdir)")
    return folder


def live_logdir(folder: Path) -> Path:
    """Where the attempt's events are now: the live logdir `live.json` names while it runs, else its `logdir`."""
    live = folder / "live.json"
    try:
        named = json.loads(live.read_text(encoding="utf-8")).get("logdir")
    except (OSError, ValueError, AttributeError):
        named = None
    if isinstance(named, str) and (Path(named) / "events.jsonl").is_file():
        return Path(named)
    return folder / "logdir"


def is_live(folder: Path) -> bool:
    return (folder / "live.json").is_file()


def events_page(folder: Path, start: int, count: int) -> tuple[list[Event], int, bool]:
    """Events `start`..`start+count` of the attempt, how many invalid lines were passed over on the way, and
    whether more follow."""
    reader = EventReader(live_logdir(folder) / "events.jsonl")
    page: list[Event] = []
    more = False
    for index, event in enumerate(reader.new_events(max_chunks=None)):
        if index >= start + count:
            more = True
            break
        if index >= start:
            page.append(event)
    return page, reader.invalid_lines, more


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object the harness wrote (an attempt's `outcome.json`); None when absent or unreadable."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def overseer_records(folder: Path) -> list[dict[str, Any]]:
    """The overseer's findings, judgements and actions for the attempt (`overseer.jsonl`), oldest first."""
    try:
        return read_record(folder / "overseer.jsonl")
    except (OSError, ValueError):
        return []


@dataclass(frozen=True)
class LedgerCall:
    """One model call as the gateway recorded it: the trusted account beside the agent's own events."""

    id: int
    alias: str
    model: str
    status: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    seconds: float | None
    started_at: float
    last_message: str
    response: str


@dataclass(frozen=True)
class LedgerView:
    """An attempt's calls in a page of the ledger, with its totals."""

    path: Path
    accounts: tuple[str, ...]
    calls: tuple[LedgerCall, ...]
    total_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


def attempt_ledger(sources: Sources, source: str, folder: Path, run_name: str | None) -> tuple[Path, str | None]:
    """The ledger that metered the attempt and the name of its account there (None: every account in it)."""
    root = sources.root(source).resolve()
    parts = folder.relative_to(root).parts
    if source == "solves":
        return root / parts[0] / "ledger.sqlite", None
    if source == "runs":
        run = parts[0]
        if len(parts) >= 4 and parts[3] == "smoke":
            return root / run / DATABASE, f"smoke {run}"
        return root / run / DATABASE, f"{parts[1]}/{parts[2]} {run}"
    eval_id = parts[0]
    problem = _problem_of(root, folder)
    name = None if problem is None else f"{problem} {eval_id}"
    own = root / eval_id / "ledger.sqlite"
    if own.is_file():
        return own, name
    run_name = run_name or run_of_evaluation(sources.runs_dir, eval_id)
    return (own if run_name is None else sources.runs_dir / run_name / DATABASE), name


def run_of_evaluation(runs_dir: Path, eval_id: str) -> str | None:
    """The run whose ledger has the account of evaluation `eval_id` (the loop's evaluations have no ledger of
    their own), or None."""
    for name in run_names(runs_dir):
        try:
            with closing(connect_read_only(runs_dir / name / DATABASE)) as db:
                if db.execute("SELECT 1 FROM accounts WHERE name = ?", (f"eval {eval_id}",)).fetchone():
                    return name
        except sqlite3.Error:
            continue
    return None


def _problem_of(results_dir: Path, folder: Path) -> str | None:
    store = results_dir / "results.sqlite"
    if store.is_file():
        with closing(connect_read_only(store)) as db:
            row = db.execute("SELECT problem_id FROM results WHERE folder = ?", (str(folder),)).fetchone()
            if row is not None:
                return str(row["problem_id"])
    log = results_dir / folder.relative_to(results_dir).parts[0] / "results.jsonl"
    try:
        for line in log.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if Path(str(entry.get("folder", ""))).resolve() == folder:
                return str(entry["problem_id"])
    except (OSError, ValueError, KeyError):
        pass
    return None


def ledger_view(path: Path, account_name: str | None, start: int, count: int, cap: int = 6000) -> LedgerView | None:
    """A page of the calls of `account_name` in the ledger at `path` (each request's last message and the
    response, cut at `cap` characters), or None when there is no such ledger."""
    if not path.is_file():
        return None
    with closing(connect_read_only(path)) as db:
        try:
            if account_name is None:
                ids = [row["id"] for row in db.execute("SELECT id FROM accounts")]
            else:
                ids = [row["id"] for row in db.execute("SELECT id FROM accounts WHERE name = ?", (account_name,))]
            if not ids:
                return LedgerView(path, (), (), 0, 0, 0, 0.0)
            marks = ",".join("?" * len(ids))
            totals = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),"
                f" COALESCE(SUM(cost_nano), 0) FROM calls WHERE account_id IN ({marks})",
                ids,
            ).fetchone()
            rows = db.execute(
                "SELECT id, alias, model, status, input_tokens, output_tokens, cost_nano, started_at, ended_at,"
                f" request_body, response_body FROM calls WHERE account_id IN ({marks}) ORDER BY id LIMIT ? OFFSET ?",
                [*ids, count, start],
            ).fetchall()
        except sqlite3.OperationalError:
            return LedgerView(path, (), (), 0, 0, 0, 0.0)
    calls = tuple(
        LedgerCall(
            row["id"],
            row["alias"],
            row["model"],
            row["status"],
            row["input_tokens"],
            row["output_tokens"],
            row["cost_nano"] / 1e9,
            None if row["ended_at"] is None else row["ended_at"] - row["started_at"],
            row["started_at"],
            _cut(_last_message(row["request_body"]), cap),
            _cut(_response_text(row["response_body"]), cap),
        )
        for row in rows
    )
    return LedgerView(path, tuple(ids), calls, totals[0], totals[1], totals[2], totals[3] / 1e9)


def _cut(text: str, cap: int) -> str:
    return text if len(text) <= cap else text[:cap] + f"\n… ({len(text) - cap} more characters)"


def _last_message(body: str | None) -> str:
    """The newest message of a request (what this call added to the conversation)."""
    if not body:
        return ""
    try:
        request = json.loads(body)
    except ValueError:
        return body
    messages = request.get("messages") if isinstance(request, Mapping) else None
    if not isinstance(messages, list) or not messages:
        return body
    return _message_text(messages[-1])


def _response_text(body: str | None) -> str:
    if not body:
        return ""
    try:
        response = json.loads(body)
    except ValueError:
        return body
    if isinstance(response, Mapping):
        choices = response.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
            return _message_text(choices[0].get("message", {}))
        if "content" in response:
            return _message_text(response)
    return body


def _message_text(message: Any) -> str:
    """A chat message as text: its role, content and any tool calls, whatever wire it came from."""
    if not isinstance(message, Mapping):
        return json.dumps(message)
    role = str(message.get("role", ""))
    content = message.get("content")
    if isinstance(content, list):
        content = "\n".join(
            str(part.get("text") or json.dumps(part)) if isinstance(part, Mapping) else str(part) for part in content
        )
    lines = [f"[{role}] {content}" if content else f"[{role}]"]
    for call in message.get("tool_calls") or []:
        if isinstance(call, Mapping):
            function = call.get("function", {})
            if isinstance(function, Mapping):
                lines.append(f"→ {function.get('name')}({function.get('arguments')})")
    return "\n".join(lines)


def attempts_under(root: Path, start: int, count: int) -> tuple[list[str], int]:
    """A page of the attempt folders under an evaluation store or solves folder (relative paths, newest first)
    and how many there are; a folder is an attempt when it holds `outcome.json` or `live.json`."""
    if not root.is_dir():
        return [], 0
    found: list[tuple[float, str]] = []
    for top in root.iterdir():
        if not top.is_dir():
            continue
        candidates = [top] if _is_attempt(top) else []
        problems = top / "problems"
        if problems.is_dir():
            for problem in problems.iterdir():
                candidates.extend(sorted(t for t in problem.glob("try-*") if _is_attempt(t)))
        for folder in candidates:
            found.append((_mtime(folder), str(folder.relative_to(root))))
    found.sort(key=lambda item: (-item[0], item[1]))
    return [relative for _, relative in found[start : start + count]], len(found)


def _is_attempt(folder: Path) -> bool:
    return (folder / "outcome.json").is_file() or (folder / "live.json").is_file()


def _mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def spend_over_time(database: Path, max_points: int = 200) -> list[tuple[float, float]]:
    """The run's cumulative spend (USD) at the end of its calls, thinned to at most `max_points` points."""
    with closing(connect_read_only(database)) as db:
        try:
            rows = db.execute(
                "SELECT COALESCE(ended_at, started_at), cost_nano FROM calls WHERE status != 'pending' ORDER BY 1"
            ).fetchall()
        except sqlite3.OperationalError:
            return []
    points: list[tuple[float, float]] = []
    total = 0
    step = max(1, len(rows) // max_points)
    for index, (at, cost) in enumerate(rows):
        total += cost
        if index % step == 0 or index == len(rows) - 1:
            points.append((float(at), total / 1e9))
    return points
