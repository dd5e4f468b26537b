"""Following an attempt into the overseer's window: events written as an agent writes them (and as a hostile one
might), and a real ledger written by the gateway's own `Ledger`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sica.gateway.accounts import Account
from sica.gateway.ledger import CallOutcome, Ledger
from sica.gateway.usage import TokenUsage
from sica.overseer.follow import AttemptFollower
from sica.overseer.ledger_view import LedgerView, response_summary
from sica.overseer.window import Limits, Window


class AgentLog:
    """Writes events.jsonl the way agent 0's `EventLog` does."""

    def __init__(self, logdir: Path) -> None:
        logdir.mkdir(exist_ok=True)
        self.path = logdir / "events.jsonl"
        self.ts = 1000.0

    def raw(self, text: str) -> None:
        with self.path.open("a") as out:
            out.write(text)

    def emit(self, event_type: str, agent: str = "main", parent: str | None = None, **data: object) -> None:
        self.ts += 1
        line = {"v": 1, "ts": self.ts, "run": "run1", "problem": "p1", "agent_id": agent, "parent_id": parent,
                "type": event_type, "data": data}
        self.raw(json.dumps(line) + "\n")


def follower(tmp_path: Path, **kwargs: object) -> tuple[AttemptFollower, AgentLog]:
    log = AgentLog(tmp_path / "logdir")
    window = Window(Limits(started_at=1000.0, time_limit_s=600, budget_usd=1.0))
    return AttemptFollower(window, tmp_path / "logdir", clock=lambda: 1010.0, **kwargs), log  # type: ignore[arg-type]


def test_events_become_agents_steps_and_notes(tmp_path):
    follow, log = follower(tmp_path, workdir=tmp_path)
    log.emit("agent_start", kind="coder", task="fix", model="m")
    log.emit("llm_call", model="m", input_tokens=100, output_tokens=20)
    log.emit("message", text="I will look at the file")
    log.emit("tool_call", tool="view", arguments={"path": "a.py"}, call_id="c1")
    log.emit("tool_result", tool="view", call_id="c1", ok=True, output="print(1)", final=False)
    log.emit("agent_start", agent="sub", parent="main", kind="reasoner")
    log.emit("agent_end", agent="sub", parent="main", status="done", summary="ok")
    assert follow.poll() == 7
    w = follow.window
    main = w.agents["main"]
    assert (main.kind, main.status, main.model_calls, main.tool_calls, main.input_tokens) == ("coder", "running", 1,
                                                                                             1, 100)
    assert w.agents["sub"].status == "done" and w.agents["sub"].parent_id == "main"
    [step] = w.steps
    assert (step.tool, step.ok, step.output, step.new_output) == ("view", True, "print(1)", True)
    assert step.workdir is not None
    assert [note.text for note in w.notes] == ["I will look at the file"]
    assert follow.poll() == 0


def test_partial_lines_wait_and_garbage_is_counted_never_fatal(tmp_path):
    follow, log = follower(tmp_path)
    log.emit("agent_start", kind="coder")
    log.raw('{"v": 1, "ts": 1, "run": "r", "problem"')
    assert follow.poll() == 1
    log.raw(': "p", "agent_id": "main", "parent_id": null, "type": "message", "data": {"text": "whole"}}\n')
    log.raw("not json at all\n")
    log.raw(json.dumps({"v": 1, "type": "tool_call"}) + "\n")
    log.raw('{"v": 1, "ts": 1, "run": "r", "problem": "p", "agent_id": "main", "parent_id": null, '
            '"type": "tool_result", "data": {"call_id": ["not", "a", "string"], "ok": "yes"}}\n')
    log.raw(b"\xff\xfe binary\n".decode("latin-1"))
    assert follow.poll() == 2
    assert follow.window.invalid_lines == 3
    assert [note.text for note in follow.window.notes] == ["whole"]


def test_a_huge_line_is_passed_over(tmp_path):
    log = AgentLog(tmp_path / "logdir")
    window = Window(Limits(started_at=0.0))
    follow = AttemptFollower(window, tmp_path / "logdir")
    follow._reader._chunk_bytes = 4096  # the reader's chunk, small so the test's line is huge
    log.raw("x" * 20_000 + "\n")
    log.emit("message", text="after the huge line")
    for _ in range(3):
        follow.poll()
    assert [note.text for note in window.notes] == ["after the huge line"]
    assert window.invalid_lines == 1


def test_a_log_that_shrinks_or_is_replaced_is_noted(tmp_path):
    follow, log = follower(tmp_path)
    log.emit("message", text="one")
    log.emit("message", text="two")
    follow.poll()
    log.path.write_text("")
    follow.poll()
    [shrank] = follow.window.log_anomalies
    assert shrank.startswith("events.jsonl shrank from") and shrank.endswith("to 0 bytes")
    log.path.unlink()
    follow.poll()
    assert follow.window.log_anomalies[-1] == "events.jsonl was removed"


def test_a_link_in_place_of_the_log_is_not_followed(tmp_path):
    secret = tmp_path / "secret.jsonl"
    secret.write_text(json.dumps({"v": 1, "ts": 1, "run": "r", "problem": "p", "agent_id": "a", "parent_id": None,
                                  "type": "message", "data": {"text": "from outside"}}) + "\n")
    (tmp_path / "logdir").mkdir()
    (tmp_path / "logdir" / "events.jsonl").symlink_to(secret)
    window = Window(Limits(started_at=0.0))
    assert AttemptFollower(window, tmp_path / "logdir").poll() == 0


def test_repeated_results_are_not_new(tmp_path):
    follow, log = follower(tmp_path)
    for i in range(3):
        log.emit("tool_call", tool="view", arguments={"path": "a.py"}, call_id=f"c{i}")
        log.emit("tool_result", tool="view", call_id=f"c{i}", ok=True, output="same")
    follow.poll()
    assert [s.new_output for s in follow.window.steps] == [True, False, False]
    assert len({s.action for s in follow.window.steps}) == 1


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    yield ledger
    ledger.close()


def open_account(ledger: Ledger, name: str, parent: str | None = None) -> str:
    account = Account(f"id-{name.replace(' ', '-')}", name, parent)
    ledger.add_account(account, None)
    return account.id


def call(ledger: Ledger, account: str, response: str | None, *, settle: bool = True, cost: int = 1000,
         status: str = "ok", http_status: int = 200) -> int:
    call_id = ledger.begin_call(account, "fake", "scripted", "scripted", False, 5000, 100, '{"messages": []}')
    if settle:
        ledger.end_call(call_id, CallOutcome(status, TokenUsage(10, 5), cost, http_status, None, 1, 0.0, 0.1,
                                             response))
    return call_id


OPENAI_TOOL = json.dumps({"choices": [{"message": {"content": "let me look", "tool_calls": [
    {"id": "1", "type": "function", "function": {"name": "view", "arguments": "{}"}}]}}]})
OPENAI_TEXT = json.dumps({"choices": [{"message": {"content": "I am thinking"}}]})


def test_calls_of_the_attempts_subtree_come_from_the_ledger(tmp_path, ledger):
    attempt = open_account(ledger, "p1 run1")
    child = open_account(ledger, "p1 run1 child", attempt)
    overseer = open_account(ledger, "overseer", attempt)
    other = open_account(ledger, "p2 run1")
    call(ledger, attempt, OPENAI_TOOL)
    call(ledger, child, OPENAI_TEXT)
    call(ledger, overseer, OPENAI_TEXT, cost=500)
    call(ledger, other, OPENAI_TEXT)
    pending = call(ledger, attempt, None, settle=False)
    call(ledger, attempt, OPENAI_TEXT)
    view = LedgerView(tmp_path / "ledger.sqlite")
    follow, log = follower(tmp_path, ledger=view, exclude_accounts=frozenset({overseer}))
    log.emit("agent_start", kind="coder")  # names the account: `p1 run1`
    follow.poll()
    w = follow.window
    assert follow.account_id == attempt
    assert [(c.account_id, c.tool_calls) for c in w.calls] == [(attempt, 1), (child, 0), (attempt, 0)]
    assert w.calls[0].text == "let me look"
    assert w.spent_usd == pytest.approx((1000 * 3 + 500 + 5000) / 1e9)
    ledger.end_call(pending, CallOutcome("ok", TokenUsage(1, 1), 7, 200, None, 1, 0.0, 0.1, OPENAI_TEXT))
    follow.poll()
    assert [c.id for c in w.calls][-1] == pending and len(w.calls) == 4
    follow.poll()
    assert len(w.calls) == 4
    view.close()


def test_an_agent_that_writes_no_events_is_seen_from_the_ledger(tmp_path, ledger):
    attempt = open_account(ledger, "p1 run1")
    view = LedgerView(tmp_path / "ledger.sqlite")
    follow, _ = follower(tmp_path, ledger=view)  # no events at all: the ledger's only top account is the attempt's
    for _ in range(6):
        call(ledger, attempt, OPENAI_TEXT)
    follow.poll()
    assert follow.window.calls_since_event == 6 and follow.window.events_seen == 0
    view.close()


def test_stored_bodies_of_either_wire_and_of_streams():
    assert response_summary(None) == ("", None)
    assert response_summary(json.dumps({"content": [{"type": "text", "text": "hi"}, {"type": "tool_use"}]})) == (
        "hi", 1)
    assert response_summary(json.dumps({"error": {"message": "maximum context length"}})) == (
        "maximum context length", 0)
    stream = ('data: {"choices": [{"delta": {"content": "he"}}]}\n\ndata: {"choices": [{"delta": {"content": "y", '
              '"tool_calls": [{"index": 0}]}}]}\n\ndata: [DONE]\n\n')
    assert response_summary(stream) == ("hey", 1)
    anthropic = ('event: content_block_delta\ndata: {"type": "content_block_delta", "delta": {"type": "text_delta", '
                 '"text": "yo"}}\n\n')
    assert response_summary(anthropic) == ("yo", 0)
    assert response_summary("<html>") == ("<html>", None)


def stamped_follower(tmp_path: Path, view: LedgerView) -> tuple[AttemptFollower, AgentLog]:
    """A follower on the wall clock, whose agent stamps its events with the time they are written (as the ledger
    stamps its calls)."""
    log = AgentLog(tmp_path / "logdir")
    window = Window(Limits(started_at=time.time(), time_limit_s=600, budget_usd=1.0))
    return AttemptFollower(window, tmp_path / "logdir", ledger=view, clock=time.time), log


def test_calls_the_agent_reported_are_not_silent_when_read_in_one_backlog(tmp_path, ledger):
    """A follower that falls behind (a long review) reads many calls and their events at once: calls made before
    the agent's last event are not counted as made in silence."""
    attempt = open_account(ledger, "p1 run1")
    view = LedgerView(tmp_path / "ledger.sqlite")
    follow, log = stamped_follower(tmp_path, view)
    for _ in range(12):
        call(ledger, attempt, OPENAI_TEXT)
        log.ts = time.time() - 1
        log.emit("llm_call", model="fake", input_tokens=10, output_tokens=5)
    follow.poll()
    assert len(follow.window.calls) == 12 and follow.window.calls_since_event == 0
    call(ledger, attempt, OPENAI_TEXT)
    follow.poll()
    assert follow.window.calls_since_event == 1
    view.close()


def test_an_event_stamped_in_the_future_hides_no_silent_calls(tmp_path, ledger):
    attempt = open_account(ledger, "p1 run1")
    view = LedgerView(tmp_path / "ledger.sqlite")
    follow, log = stamped_follower(tmp_path, view)
    log.ts = time.time() + 1e6
    log.emit("agent_start", kind="coder")
    follow.poll()
    time.sleep(0.01)
    for _ in range(6):
        call(ledger, attempt, OPENAI_TEXT)
    follow.poll()
    assert follow.window.calls_since_event == 6
    view.close()
