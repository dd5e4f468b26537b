"""A short account of an attempt, written by the harness from the agent's events: what the problem asked, how
the attempt ended and what the agent did on the way (its tool calls, the last few in order, and its errors).

It is what the archive view shows the meta agent about a failed problem, so that a meta agent learns why a
version failed without reading whole traces. Events are the agent's own account: every field is read
defensively, cut to a line, and the whole summary is capped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sica.events import Event

#: Tool calls listed one by one (the last ones: they show where the attempt went wrong).
LAST_CALLS_SHOWN = 12
#: Characters kept of one listed item, of the statement, and of the whole summary.
LINE_CHARS = 200
STATEMENT_CHARS = 1500
SUMMARY_CHARS = 6000


def summarize_attempt(statement: str, events: Iterable[Event], status: str, summary: str) -> str:
    """Markdown: the problem, how the attempt ended (`status`, `summary`: the agent's words or the harness's)
    and what its events say it did."""
    steps, model_calls, tools, failed, errors = 0, 0, Counter[str](), Counter[str](), []
    calls: dict[tuple[str, str], str] = {}
    listed: list[str] = []
    for event in events:
        data = event.data
        who = "" if event.parent_id is None else f"[{event.agent_id}] "
        if event.type == "llm_call":
            model_calls += 1
        elif event.type == "agent_end" and event.parent_id is None:
            steps = _int(data.get("steps"))
        elif event.type == "tool_call":
            tool = _line(data.get("tool"), 40)
            tools[tool] += 1
            calls[(event.agent_id, _line(data.get("call_id"), 80))] = f"{who}{tool} {_arguments(data.get('arguments'))}"
        elif event.type == "tool_result":
            call = calls.pop((event.agent_id, _line(data.get("call_id"), 80)), f"{who}{_line(data.get('tool'), 40)}")
            ok = data.get("ok") is True
            if not ok:
                failed[_line(data.get("tool"), 40)] += 1
            listed.append(f"{call} → {'ok' if ok else 'failed'}: {_line(data.get('output'))}")
        elif event.type == "error":
            errors.append(f"{who}{_line(data.get('kind'), 40)}: {_line(data.get('message'))}")
    listed.extend(f"{call} → no result" for call in calls.values())
    text = [
        f"## Problem\n\n{_cut(statement.strip(), STATEMENT_CHARS)}\n",
        f"## How it ended\n\n{status}: {_line(summary, 1000)}\n",
        f"## What it did\n\n{steps} steps, {model_calls} model calls, {sum(tools.values())} tool calls"
        + (f" ({', '.join(_tally(tools, failed))})" if tools else "")
        + ".\n",
    ]
    if listed:
        shown = listed[-LAST_CALLS_SHOWN:]
        heading = (
            "The tool calls" if len(shown) == len(listed) else f"The last {len(shown)} of {len(listed)} tool calls"
        )
        text.append(f"{heading}:\n\n" + "\n".join(f"{n}. {call}" for n, call in enumerate(shown, 1)) + "\n")
    if errors:
        text.append("Errors it reported:\n\n" + "\n".join(f"- {error}" for error in errors[-LAST_CALLS_SHOWN:]) + "\n")
    return _cut("\n".join(text), SUMMARY_CHARS)


def _tally(tools: Counter[str], failed: Counter[str]) -> list[str]:
    return [f"{tool} ×{n}" + (f", {failed[tool]} failed" if failed[tool] else "") for tool, n in tools.most_common()]


def _arguments(arguments: Any) -> str:
    if isinstance(arguments, dict) and len(arguments) == 1:
        arguments = next(iter(arguments.values()))
    return _line(arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False, default=str))


def _line(value: Any, limit: int = LINE_CHARS) -> str:
    """`value` as one line of at most `limit` characters."""
    return _cut(" ".join(str("" if value is None else value).split()), limit)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
