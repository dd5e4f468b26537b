"""The gateway's ledger as the viewer shows it, read-only: which ledger and account metered an attempt, a page of
its calls (each request's newest message and the response) with their totals, and a run's spend over time."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sica.archive.run import DATABASE
from sica.viewer.attempts import Sources
from sica.viewer.runs import connect_read_only, run_names


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


def ledger_view(
    path: Path,
    account_name: str | None,
    start: int,
    count: int,
    window: tuple[float, float] | None = None,
    cap: int = 6000,
) -> LedgerView | None:
    """A page of the calls of `account_name` in the ledger at `path` (each request's last message and the
    response, cut at `cap` characters), those begun within `window` (seconds since the epoch) when given: the
    attempts that share an account name (a problem's tries, a run's smoke checks) each see their own. None when
    there is no such ledger."""
    if not path.is_file():
        return None
    low, high = window if window is not None else (float("-inf"), float("inf"))
    with closing(connect_read_only(path)) as db:
        try:
            if account_name is None:
                ids = [row["id"] for row in db.execute("SELECT id FROM accounts")]
            else:
                ids = [row["id"] for row in db.execute("SELECT id FROM accounts WHERE name = ?", (account_name,))]
            if not ids:
                return LedgerView(path, (), (), 0, 0, 0, 0.0)
            where = f"account_id IN ({','.join('?' * len(ids))}) AND started_at BETWEEN ? AND ?"
            totals = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),"
                f" COALESCE(SUM(cost_nano), 0) FROM calls WHERE {where}",
                [*ids, low, high],
            ).fetchone()
            rows = db.execute(
                "SELECT id, alias, model, status, input_tokens, output_tokens, cost_nano, started_at, ended_at,"
                f" request_body, response_body FROM calls WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
                [*ids, low, high, count, start],
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
