"""The agent loop driven by a scripted model: both calling modes, errors, inbox, context, sub-agents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripted import ScriptedModel, read_events, scripted_runtime, settings_for
from sica_agent.agent import Agent
from sica_agent.kinds import IMPROVER, SOLVER
from sica_agent.run import overview, run_top_agent
from sica_agent.tools.base import ToolContext


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    return work


def solve(model: ScriptedModel, workdir: Path, logdir: Path, **settings: object):
    runtime = scripted_runtime(model, logdir, settings_for(wire=model.wire, **settings))
    return run_top_agent(SOLVER, runtime, ToolContext(workdir), "Fix add in calc.py.")


FIX = [
    {"tool_calls": [{"name": "view", "arguments": {"path": "calc.py"}}]},
    {"content": "The operator is wrong.",
     "tool_calls": [{"name": "replace", "arguments": {"path": "calc.py", "old": "a - b", "new": "a + b"}}]},
    {"tool_calls": [{"name": "run", "arguments": {"command": "python -c 'import calc; print(calc.add(2, 3))'"}}]},
    {"tool_calls": [{"name": "complete", "arguments": {"summary": "add now adds"}}]},
]


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_native_calls_fix_the_bug_and_events_tell_the_story(workdir, tmp_path, wire):
    model = ScriptedModel(FIX, wire=wire)
    result = solve(model, workdir, tmp_path / "log")
    assert (result.status, result.steps) == ("done", 4)
    assert (workdir / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    events = read_events(tmp_path / "log")
    assert [e["type"] for e in events][:4] == ["agent_start", "llm_call", "tool_call", "tool_result"]
    assert events[-1]["type"] == "agent_end" and events[-1]["data"]["status"] == "done"
    assert all(e["v"] == 1 and e["run"] == "test-run" and e["parent_id"] is None for e in events)
    run_result = next(e for e in events if e["type"] == "tool_result" and e["data"]["tool"] == "run")
    assert "5" in run_result["data"]["output"]
    # The history is append-only: each request starts with the whole previous one.
    for before, after in zip(model.requests, model.requests[1:]):
        assert after["messages"][:len(before["messages"])] == _without_cache_marks(before["messages"])


def _without_cache_marks(messages):
    return json.loads(json.dumps(messages).replace(', "cache_control": {"type": "ephemeral"}', ""))


def test_anthropic_requests_mark_cache_breakpoints(workdir, tmp_path):
    model = ScriptedModel(FIX, wire="anthropic")
    solve(model, workdir, tmp_path / "log")
    request = model.requests[1]
    assert request["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert request["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert [tool["name"] for tool in request["tools"]][:2] == ["view", "search"]


def test_text_mode_parses_fenced_json_and_constrains_the_reply(workdir, tmp_path):
    replies = [
        {"content": 'I will look first.\n```json\n{"thought": "read", "tool": "view", "arguments": {"path": "calc.py"},}\n```'},
        {"content": "{'tool': 'replace', 'arguments': {'path': 'calc.py', 'old': 'a - b', 'new': 'a + b'}}"},
        {"content": '{"tool": "complete", "arguments": {"summary": "fixed"}}'},
    ]
    model = ScriptedModel(replies)
    result = solve(model, workdir, tmp_path / "log", tool_mode="text")
    assert result.status == "done"
    assert "a + b" in (workdir / "calc.py").read_text()
    first = model.requests[0]
    assert "tools" not in first and first["response_format"]["type"] == "json_schema"
    assert "view" in first["messages"][0]["content"]  # the tools are described in the system prompt


def test_malformed_replies_get_precise_errors_then_end_the_agent(workdir, tmp_path):
    model = ScriptedModel([{"content": "I think the answer is 5."}] * 3)
    result = solve(model, workdir, tmp_path / "log", tool_mode="text")
    assert result.status == "format_error"
    second = model.requests[1]["messages"][-1]["content"]
    assert "JSON" in second and "<" not in second
    assert sum(e["type"] == "error" for e in read_events(tmp_path / "log")) == 3


def test_native_reply_without_a_tool_call_is_a_format_error(workdir, tmp_path):
    model = ScriptedModel([{"content": "done?"}, *FIX])
    assert solve(model, workdir, tmp_path / "log").status == "done"
    assert "called no tool" in model.requests[1]["messages"][-1]["content"]


def test_a_model_call_waits_no_longer_than_the_time_left(workdir, tmp_path):
    """A reply that would come after the agent's time is up ends the agent as `timeout`, not as an unreachable
    model; one that comes in time is used."""
    model = ScriptedModel([dict(FIX[0], latency_s=5), dict(FIX[1], latency_s=100)])
    result = solve(model, workdir, tmp_path / "log", time_limit_s=30)
    assert result.status == "timeout" and "time ran out waiting for the model" in result.summary
    assert len(model.requests) == 2
    events = read_events(tmp_path / "log")
    assert [e["data"]["tool"] for e in events if e["type"] == "tool_call"] == ["view"]
    assert events[-1]["data"]["status"] == "timeout"


@pytest.mark.parametrize(("status", "expected"), [(402, "budget_exceeded"), (503, "infra_error"), (400, "error")])
def test_gateway_errors_end_the_agent_with_their_status(workdir, tmp_path, status, expected):
    model = ScriptedModel([FIX[0], {"error": {"status": status, "message": "no"}}])
    result = solve(model, workdir, tmp_path / "log")
    assert result.status == expected
    assert read_events(tmp_path / "log")[-1]["data"]["status"] == expected


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_llm_call_events_record_the_tokens_the_model_reported(workdir, tmp_path, wire):
    model = ScriptedModel([dict(FIX[0], usage={"input": 1200, "output": 30}), FIX[3]], wire=wire)
    solve(model, workdir, tmp_path / "log")
    calls = [e["data"] for e in read_events(tmp_path / "log") if e["type"] == "llm_call"]
    assert [(call["input_tokens"], call["output_tokens"]) for call in calls] == [(1200, 30), (10, 5)]


def test_repeated_call_gets_a_nudge_and_a_higher_temperature(workdir, tmp_path):
    model = ScriptedModel([FIX[0], FIX[0], FIX[3]])
    solve(model, workdir, tmp_path / "log")
    nudge = "you made exactly this call at step 1 and got exactly this output"
    assert nudge in model.requests[2]["messages"][-1]["content"]
    assert (model.requests[1]["temperature"], model.requests[2]["temperature"]) == (0.2, 0.8)


def test_a_loop_of_two_calls_is_noticed_but_a_call_whose_output_changed_is_not(workdir, tmp_path):
    model = ScriptedModel([FIX[2], FIX[0], FIX[2], FIX[1], FIX[2], FIX[3]])  # run, view, run, fix, run, complete
    solve(model, workdir, tmp_path / "log")
    results = [request["messages"][-1]["content"] for request in model.requests[1:]]
    assert "exactly this call at step 1" in str(results[2])  # the same run, the same output: a loop
    assert "exactly this call" not in str(results[4]) and "5" in str(results[4])  # after the fix it prints 5


def write_inbox(logdir: Path, sequence: int, **entry: str) -> None:
    (logdir / "inbox").mkdir(parents=True, exist_ok=True)
    (logdir / "inbox" / f"{sequence:06d}.json").write_text(json.dumps(entry))


def test_inbox_notify_reaches_the_model_and_cancel_stops_the_agent(workdir, tmp_path):
    logdir = tmp_path / "log"
    model = ScriptedModel([FIX[0], FIX[0], FIX[0], FIX[0]])
    write_inbox(logdir, 1, type="notify", agent_id="main-1", text="Look at calc.py first.")
    model.before_request(1, lambda: write_inbox(logdir, 2, type="cancel", agent_id="main-1", text="off task"))
    runtime = scripted_runtime(model, logdir, settings_for())
    result = Agent(SOLVER, runtime, ToolContext(workdir), "Fix add.").run()
    assert result.status == "cancelled" and "off task" in result.summary
    assert "Message from the supervisor: Look at calc.py first." in json.dumps(model.requests[0]["messages"])
    assert [e["type"] for e in read_events(logdir)].count("notification") == 1


def test_old_tool_outputs_are_condensed_near_the_context_window(workdir, tmp_path):
    (workdir / "big.py").write_text("x = 1\n" * 400)
    model = ScriptedModel([{"tool_calls": [{"name": "view", "arguments": {"path": "big.py"}}]}] * 5 + [FIX[3]])
    result = solve(model, workdir, tmp_path / "log", context_window=3000)
    assert result.status == "done"
    last = json.dumps(model.requests[-1]["messages"])
    assert "output condensed" in last
    assert any("condensed" in e["data"].get("text", "") for e in read_events(tmp_path / "log")
               if e["type"] == "message")


def test_a_big_output_is_cut_to_a_share_of_a_small_context_window_and_requests_stay_within_it(workdir, tmp_path):
    """Two views of a large file on an 8k-token model once overflowed its window (HTTP 400, the run lost)."""
    (workdir / "big.py").write_text("".join(f"value_{n} = compute_something({n}, more={n * 2})  # note\n"
                                            for n in range(300)))
    view = {"tool_calls": [{"name": "view", "arguments": {"path": "big.py"}}]}
    model = ScriptedModel([view, view, view, FIX[3]])
    result = solve(model, workdir, tmp_path / "log", context_window=4000)
    assert result.status == "done"
    first = model.requests[1]["messages"][-1]["content"]
    assert "characters cut to fit the model's context" in first and len(first) < 2600  # 0.2 × 4000 × 3 = 2400
    assert first.startswith("big.py, lines 1-") and "call view with start=" in first  # the head and the tail
    for request in model.requests:
        assert len(json.dumps(request["messages"])) / 3 < 4000 * 0.9


def test_sub_agent_gets_its_own_context_and_returns_a_typed_result(workdir, tmp_path):
    model = ScriptedModel([
        {"tool_calls": [{"name": "software_developer", "arguments": {"task": "Make add in calc.py add."}}]},
        FIX[1], {"tool_calls": [{"name": "complete", "arguments": {"summary": "changed - to +"}}]},
        {"tool_calls": [{"name": "complete", "arguments": {"summary": "delegated and done"}}]},
    ])
    result = solve(model, workdir, tmp_path / "log")
    assert result.status == "done"
    child_request = model.requests[1]
    assert child_request["messages"][1]["content"] == "Make add in calc.py add."  # only its own task
    assert "software_developer ended with status done" in model.requests[3]["messages"][-1]["content"]
    events = read_events(tmp_path / "log")
    child = next(e for e in events if e["type"] == "agent_start" and e["parent_id"] == "main-1")
    assert child["agent_id"].startswith("software_developer")


def test_cancelled_child_returns_what_it_has_and_the_parent_goes_on(workdir, tmp_path):
    logdir = tmp_path / "log"
    model = ScriptedModel([
        {"tool_calls": [{"name": "software_developer", "arguments": {"task": "Look around."}}]},
        FIX[0], FIX[0],
        {"tool_calls": [{"name": "complete", "arguments": {"summary": "parent finished"}}]},
    ])
    model.before_request(2, lambda: write_inbox(logdir, 1, type="cancel", agent_id="software_developer-2",
                                                text="taking too long"))
    result = solve(model, workdir, logdir)
    assert result.status == "done"
    handed_back = json.dumps(model.requests[-1]["messages"][-1])
    assert "status cancelled" in handed_back and "taking too long" in handed_back


def test_first_prompt_shows_the_tree_and_the_files_the_task_names(workdir):
    text = overview(ToolContext(workdir), "The add function in `calc.py` is wrong; see also missing.py.")
    assert "calc.py" in text.split("Contents of")[0]
    assert "Contents of calc.py:" in text and "return a - b" in text
    assert "missing.py:" not in text


def test_improve_asks_the_archive_explorer_edits_itself_and_records_the_change(tmp_path):
    code = tmp_path / "code"
    (code / "sica_agent").mkdir(parents=True)
    (code / "sica_agent" / "kinds.py").write_text('INSTRUCTIONS = "Be careful."\n')
    (code / "description.txt").write_text("agent 0\n")
    (code / "CHANGELOG.md").write_text("# Changelog\n")
    archive = tmp_path / "archive"
    (archive / "agent-0").mkdir(parents=True)
    (archive / "versions.md").write_text("| id | score |\n| agent-0 | 0.40 |\n")
    (archive / "agent-0" / "failures.md").write_text("problem 7: the agent never ran the tests\n")
    model = ScriptedModel([
        {"tool_calls": [{"name": "archive_explorer", "arguments": {"task": "Why do problems fail?"}}]},
        {"tool_calls": [{"name": "view", "arguments": {"path": "agent-0/failures.md"}}]},
        {"tool_calls": [{"name": "complete", "arguments": {"summary": "the agent never runs the tests"}}]},
        {"tool_calls": [{"name": "replace", "arguments": {"path": "sica_agent/kinds.py", "old": "Be careful.",
                                                          "new": "Be careful. Always run the tests."}}]},
        {"tool_calls": [{"name": "create", "arguments": {"path": "description.txt",
                                                         "content": "agent 1: always runs the tests\n"}}]},
        {"tool_calls": [{"name": "complete", "arguments": {"summary": "prompt now demands running tests"}}]},
    ])
    runtime = scripted_runtime(model, tmp_path / "log", settings_for(), archive=archive)
    result = run_top_agent(IMPROVER, runtime, ToolContext(code), "Improve this agent.")
    assert result.status == "done"
    explorer_answer = json.dumps(model.requests[3]["messages"][-1])
    assert "the agent never runs the tests" in explorer_answer
    assert "problem 7" in json.dumps(model.requests[2]["messages"])  # the explorer read the archive
    assert "Always run the tests" in (code / "sica_agent" / "kinds.py").read_text()
    assert (code / "description.txt").read_text() == "agent 1: always runs the tests\n"
