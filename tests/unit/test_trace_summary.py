"""The harness's account of an attempt, made from the agent's (untrusted) events."""

from __future__ import annotations

from typing import Any

from sica.events import Event
from sica.runner.trace_summary import LAST_CALLS_SHOWN, SUMMARY_CHARS, summarize_attempt


def event(kind: str, data: dict[str, Any], agent: str = "main-1", parent: str | None = None) -> Event:
    return Event(v=1, ts=0.0, run="r", problem="p", agent_id=agent, parent_id=parent, type=kind, data=data)


def call(n: int, tool: str, arguments: Any, ok: bool, output: str, agent: str = "main-1",
         parent: str | None = None) -> list[Event]:
    return [event("tool_call", {"tool": tool, "arguments": arguments, "call_id": f"c{n}"}, agent, parent),
            event("tool_result", {"tool": tool, "call_id": f"c{n}", "ok": ok, "output": output}, agent, parent)]


def test_the_account_tells_the_problem_the_end_and_the_tool_calls_in_order():
    events = [event("agent_start", {"kind": "main", "task": "t"}), event("llm_call", {"input_tokens": 5}),
              *call(0, "bash", {"command": "pytest -q"}, False, "1 failed\nE assert 2 == 3"),
              *call(1, "edit", {"path": "calc.py", "old": "a - b", "new": "a + b"}, True, "edited calc.py"),
              *call(2, "search", {"pattern": "x"}, True, "3 matches", agent="sub-2", parent="main-1"),
              event("tool_call", {"tool": "bash", "arguments": {"command": "sleep 99"}, "call_id": "c3"}),
              event("error", {"kind": "format_error", "message": "no tool call in the reply"}),
              event("agent_end", {"status": "timeout", "summary": "ran out", "steps": 7})]
    text = summarize_attempt("Fix add() in calc.py.\n", events, "timeout", "the time ran out")
    assert text.startswith("## Problem\n\nFix add() in calc.py.\n\n## How it ended\n\ntimeout: the time ran out\n")
    assert "7 steps, 1 model calls, 4 tool calls (bash ×2, 1 failed, edit ×1, search ×1)." in text
    assert ("1. bash pytest -q → failed: 1 failed E assert 2 == 3\n"
            '2. edit {"path": "calc.py", "old": "a - b", "new": "a + b"} → ok: edited calc.py\n'
            "3. [sub-2] search x → ok: 3 matches\n"
            "4. bash sleep 99 → no result\n") in text
    assert "- format_error: no tool call in the reply" in text


def test_long_and_odd_events_are_cut_and_never_break_the_account():
    many = [e for n in range(40) for e in call(n, "view", {"path": f"f{n}.py"}, True, "x" * 10_000)]
    odd = [event("tool_result", {"call_id": None, "ok": "yes", "output": {"nested": [1, 2]}}),
           event("agent_end", {"status": "done", "steps": "many"})]
    text = summarize_attempt("s" * 50_000, [*many, *odd], "done", "y" * 50_000)
    assert len(text) <= SUMMARY_CHARS
    assert f"The last {LAST_CALLS_SHOWN} of 41 tool calls" in text
    assert "0 steps" in text and "→ failed: {'nested': [1, 2]}" in text


def test_an_agent_that_wrote_no_events_still_gets_the_end():
    text = summarize_attempt("Do it.", [], "error", "the agent exited with code 1 without reporting an end")
    assert "error: the agent exited with code 1" in text and "0 steps, 0 model calls, 0 tool calls." in text
