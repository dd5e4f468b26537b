"""Attempts, read-only: where they are (under a run, the evaluation store or the solves folder), their events
(through `sica.events.EventReader`, which reads only regular files, never through a link: the agent wrote
them), their outcome and the overseer's record."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sica.archive import ArchiveError
from sica.events import Event, EventReader
from sica.overseer.record import read_record

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


@dataclass
class AgentSummary:
    """One agent as its events tell (the agent's own account): its caller, when it started and ended, how it
    ended, and the model calls and tokens it reports."""

    parent: str | None
    start: float
    end: float | None = None
    status: str = "running"
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class EventsRead:
    """A page of an attempt's events, and what all its events tell: each agent, and the model calls and input
    tokens reported in all (for the comparison with the ledger)."""

    page: list[Event]
    more: bool
    invalid_lines: int
    agents: dict[str, AgentSummary] = field(default_factory=dict)
    reported_calls: int = 0
    reported_input_tokens: int = 0


def read_events(folder: Path, start: int, count: int, limit: int = 200_000) -> EventsRead:
    """Events `start`..`start+count` of the attempt, and the summary of its first `limit` events, in one pass."""
    reader = EventReader(live_logdir(folder) / "events.jsonl")
    read = EventsRead([], False, 0)
    for index, event in enumerate(reader.new_events(max_chunks=None)):
        if index >= limit:
            read.more = read.more or index >= start + count
            break
        if start <= index < start + count:
            read.page.append(event)
        elif index >= start + count:
            read.more = True
        agent = read.agents.setdefault(event.agent_id, AgentSummary(event.parent_id, event.ts))
        if event.type == "agent_end":
            agent.end, agent.status = event.ts, str(event.data.get("status", "?"))
        elif event.type == "llm_call":
            tokens_in, tokens_out = (event.data.get(key) for key in ("input_tokens", "output_tokens"))
            agent.calls += 1
            agent.input_tokens += tokens_in if isinstance(tokens_in, int) else 0
            agent.output_tokens += tokens_out if isinstance(tokens_out, int) else 0
            read.reported_calls += 1
            read.reported_input_tokens += tokens_in if isinstance(tokens_in, int) else 0
    read.invalid_lines = reader.invalid_lines
    return read


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


def attempt_window(folder: Path, slack_s: float = 1.0) -> tuple[float, float] | None:
    """When the attempt ran, by the files the harness wrote: `task.md` at its start, `outcome.json` at its end
    (now, while it runs), widened by `slack_s`; None when it has no `task.md`."""
    try:
        began = (folder / "task.md").stat().st_mtime
    except OSError:
        return None
    try:
        ended = (folder / "outcome.json").stat().st_mtime
    except OSError:
        ended = float("inf")
    return began - slack_s, ended + slack_s
