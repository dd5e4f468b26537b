"""The overseer's loop with a scripted agent's events and a scripted overseer model through the real gateway:
a detector brings the review forward, notifications and cancels land in the right agent's inbox, healthy runs
are left alone, and every finding, judgement and action is recorded outside the agent's logdir."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path

from sica.config import OverseerSettings
from sica.overseer import AttemptFollower, Limits, Overseer, OverseerRecord, ReviewModel, Reviewer, Window
from sica.overseer.record import read_record
from tests.support.config import jsonl, scripted_config
from tests.unit.test_overseer_follow import AgentLog

LOOPING = {"verdict": "looping", "agent": "main", "notify": "Stop viewing agent.py; edit it.", "cancel": "none",
           "notes": "told it once", "next_look_s": 5}
CANCEL = {"verdict": "tampering", "agent": "sub", "cancel": "run", "notes": "it edited the tests"}


def oversee(tmp_path: Path, serve, make_settings, script, write_events, *, steps: int = 1, interval_s: float = 30,
            clock=time.monotonic, **settings_keys):
    settings = make_settings(scripted_config({"judge": {}}), {"script.jsonl": jsonl(script)})
    running = serve(settings)
    attempt = running.gateway.open_account("p1 run1", limit_usd=1.0)
    own = running.gateway.open_account("overseer", parent=attempt.id, limit_usd=0.1, aliases=frozenset({"judge"}))
    log = AgentLog(tmp_path / "logdir")
    write_events(log)
    window = Window(Limits(started_at=0.0))
    follower = AttemptFollower(window, tmp_path / "logdir")
    record = OverseerRecord(tmp_path / "overseer.jsonl")

    async def go():
        async with running.client(own.token) as client:
            overseer = Overseer(OverseerSettings(interval_s=interval_s, **settings_keys), follower,
                                tmp_path / "logdir", record, Reviewer(client, ReviewModel("judge", "openai")),
                                clock=clock)
            return [await overseer.step() for _ in range(steps)], overseer

    outcomes, overseer = asyncio.run(go())
    record.close()
    return outcomes, overseer, list(running.gateway.ledger.calls(own.id))


def looping(log: AgentLog) -> None:
    log.emit("agent_start", kind="coder")
    for i in range(4):
        log.emit("tool_call", tool="view", arguments={"path": "agent.py"}, call_id=f"c{i}")
        log.emit("tool_result", tool="view", call_id=f"c{i}", ok=True, output="same text")


def healthy(log: AgentLog) -> None:
    log.emit("agent_start", kind="coder")
    for i, path in enumerate(["a.py", "b.py", "c.py"]):
        log.emit("tool_call", tool="view", arguments={"path": path}, call_id=f"c{i}")
        log.emit("tool_result", tool="view", call_id=f"c{i}", ok=True, output=f"text of {path}")


def inbox(tmp_path: Path) -> list[dict[str, str]]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "logdir" / "inbox").glob("*.json"))]


def test_a_looping_agent_is_reviewed_at_once_and_notified(tmp_path, serve, make_settings):
    outcomes, overseer, calls = oversee(tmp_path, serve, make_settings, [{"content": json.dumps(LOOPING)}], looping)
    assert outcomes[0] is not None and outcomes[0].judgement is not None
    assert inbox(tmp_path) == [{"type": "notify", "agent_id": "main", "text": "Stop viewing agent.py; edit it."}]
    request = json.loads(calls[0]["request_body"])
    assert "repeated_action_observation [main]" in request["messages"][-1]["content"]
    kinds = [r["type"] for r in read_record(tmp_path / "overseer.jsonl")]
    assert kinds == ["finding", "judgement", "action"]
    assert overseer.notes == "told it once"


def test_a_cancel_of_the_run_goes_to_the_top_agent(tmp_path, serve, make_settings):
    def tampering(log: AgentLog) -> None:
        log.emit("agent_start", kind="coder")
        log.emit("tool_call", tool="edit", arguments={"path": "tests/test_a.py", "new": "pass"}, call_id="c1")
        log.emit("tool_result", tool="edit", call_id="c1", ok=True, output="edited")

    tmp_inbox = tmp_path / "logdir" / "inbox"
    tmp_inbox.mkdir(parents=True)
    (tmp_inbox / "000000.json").write_text('{"type": "notify", "agent_id": "main", "text": "earlier"}')
    oversee(tmp_path, serve, make_settings, [{"content": json.dumps(CANCEL)}], tampering)
    assert inbox(tmp_path)[1] == {"type": "cancel", "agent_id": "main", "text": "cancelled by the overseer: tampering"}
    actions = [r["data"] for r in read_record(tmp_path / "overseer.jsonl") if r["type"] == "action"]
    assert actions == [{"action": "cancel", "scope": "run", "agent": "main", "delivered": True}]


def test_a_healthy_run_is_left_alone_until_its_interval(tmp_path, serve, make_settings):
    outcomes, _, calls = oversee(tmp_path, serve, make_settings, [{"content": json.dumps(LOOPING)}], healthy,
                                 steps=3)
    assert outcomes == [None, None, None] and calls == []
    assert not (tmp_path / "logdir" / "inbox").exists()
    assert read_record(tmp_path / "overseer.jsonl") == []


def test_a_malformed_judgement_is_recorded_and_nothing_done(tmp_path, serve, make_settings):
    outcomes, _, calls = oversee(tmp_path, serve, make_settings, [{"content": "hmm"}, {"content": "{}"}], looping)
    assert outcomes[0] is not None and outcomes[0].judgement is None and len(calls) == 2
    [ignored] = [r for r in read_record(tmp_path / "overseer.jsonl") if r["type"] == "review_ignored"]
    assert ignored["data"]["reason"].startswith("malformed judgement twice")
    assert not (tmp_path / "logdir" / "inbox").exists()


def test_an_inbox_replaced_by_a_link_gets_nothing(tmp_path, serve, make_settings):
    (tmp_path / "logdir").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "logdir" / "inbox").symlink_to(tmp_path / "elsewhere")
    oversee(tmp_path, serve, make_settings, [{"content": json.dumps(LOOPING)}], looping)
    assert list((tmp_path / "elsewhere").iterdir()) == []
    [action] = [r["data"] for r in read_record(tmp_path / "overseer.jsonl") if r["type"] == "action"]
    assert action["delivered"] is False


def test_a_looping_verdict_no_finding_supports_is_withheld(tmp_path, serve, make_settings):
    """A healthy run reviewed at its interval (the clock moves a minute a reading), judged looping by a model that
    wants it told and cancelled: no stuck pattern supports the verdict, so neither goes (both recorded)."""
    judged = {**LOOPING, "cancel": "run"}
    _, overseer, _ = oversee(tmp_path, serve, make_settings, [{"content": json.dumps(judged)}], healthy,
                             clock=itertools.count(0, 60).__next__)
    assert not (tmp_path / "logdir" / "inbox").exists()
    actions = [r["data"] for r in read_record(tmp_path / "overseer.jsonl") if r["type"] == "action"]
    assert [a["withheld"] for a in actions] == ["notify", "cancel run"] and overseer.withheld == 2


def test_an_off_task_notice_goes_but_its_cancel_needs_a_finding(tmp_path, serve, make_settings):
    judged = {**LOOPING, "verdict": "off_task", "notify": "Your task is the parser, not the docs.", "cancel": "run"}
    oversee(tmp_path, serve, make_settings, [{"content": json.dumps(judged)}], healthy,
            clock=itertools.count(0, 60).__next__)
    assert inbox(tmp_path) == [{"type": "notify", "agent_id": "main", "text": "Your task is the parser, not the docs."}]
    actions = [r["data"] for r in read_record(tmp_path / "overseer.jsonl") if r["type"] == "action"]
    assert actions[-1] == {"action": "withheld", "withheld": "cancel run", "reason": "no finding supports the verdict"}


def test_a_tampering_cancel_needs_a_tampering_sign_not_just_any_finding(tmp_path, serve, make_settings):
    judged = {**CANCEL, "agent": "main"}
    oversee(tmp_path, serve, make_settings, [{"content": json.dumps(judged)}], looping)
    assert [n["type"] for n in inbox(tmp_path)] == []
    actions = [r["data"] for r in read_record(tmp_path / "overseer.jsonl") if r["type"] == "action"]
    assert actions == [{"action": "withheld", "withheld": "cancel run", "reason": "no finding supports the verdict"}]


def test_a_cancel_without_a_finding_goes_when_the_settings_allow_it(tmp_path, serve, make_settings):
    judged = {**LOOPING, "cancel": "run"}
    oversee(tmp_path, serve, make_settings, [{"content": json.dumps(judged)}], healthy,
            clock=itertools.count(0, 60).__next__, interventions_need_findings=False)
    assert inbox(tmp_path)[1] == {"type": "cancel", "agent_id": "main", "text": "cancelled by the overseer: looping"}


def escalation(tmp_path: Path, serve, make_settings, more_steps: int, repeat: bool, **settings_keys):
    """A looping agent told once (the model never cancels), then `more_steps` tool steps, the same one again
    (`repeat`) or each new; the cancels the overseer handed the runner."""
    settings = make_settings(scripted_config({"judge": {}}), {"script.jsonl": jsonl([{"content": json.dumps(LOOPING)}])})
    running = serve(settings)
    own = running.gateway.open_account("overseer", limit_usd=0.1, aliases=frozenset({"judge"}))
    log = AgentLog(tmp_path / "logdir")
    looping(log)
    follower = AttemptFollower(Window(Limits(started_at=0.0)), tmp_path / "logdir")
    record = OverseerRecord(tmp_path / "overseer.jsonl")
    cancels: list[tuple[str, str]] = []

    async def go():
        async with running.client(own.token) as client:
            overseer = Overseer(OverseerSettings(interval_s=600, **settings_keys), follower, tmp_path / "logdir",
                                record, Reviewer(client, ReviewModel("judge", "openai")),
                                on_cancel=lambda agent, judgement: cancels.append((agent, judgement.notes)))
            await overseer.step()
            for i in range(more_steps):
                path = "agent.py" if repeat else f"file{i}.py"
                log.emit("tool_call", tool="view", arguments={"path": path}, call_id=f"d{i}")
                log.emit("tool_result", tool="view", call_id=f"d{i}", ok=True, output="same text" if repeat else path)
                await overseer.step()

    asyncio.run(go())
    record.close()
    return cancels


def test_an_agent_told_and_still_repeating_itself_has_its_run_cancelled(tmp_path, serve, make_settings):
    cancels = escalation(tmp_path, serve, make_settings, more_steps=12, repeat=True)
    assert cancels == [("main", "still stuck 10 steps after the overseer's notice")]
    assert inbox(tmp_path)[-1] == {"type": "cancel", "agent_id": "main",
                                   "text": "cancelled by the overseer: still stuck 10 steps after the overseer's notice"}
    actions = [r["data"]["action"] for r in read_record(tmp_path / "overseer.jsonl") if r["type"] == "action"]
    assert actions == ["notify", "cancel"]


def test_an_agent_that_heeds_the_notice_is_not_cancelled(tmp_path, serve, make_settings):
    assert escalation(tmp_path, serve, make_settings, more_steps=12, repeat=False) == []
    assert [n["type"] for n in inbox(tmp_path)] == ["notify"]


def test_escalation_can_be_switched_off(tmp_path, serve, make_settings):
    assert escalation(tmp_path, serve, make_settings, more_steps=12, repeat=True, escalate_after_steps=0) == []
