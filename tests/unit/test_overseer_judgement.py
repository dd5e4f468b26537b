"""The overseer's review through the real gateway and its scripted model: the rendering it reads, a good
judgement parsed, a malformed one retried then ignored, and its own account's budget enforced by the gateway."""

from __future__ import annotations

import asyncio
import json

import pytest

from sica.overseer.detectors import Finding
from sica.overseer.judgement import Judgement, JudgementError, ReviewModel, Reviewer, parse_judgement, request_schema
from sica.overseer.rendering import render_window
from sica.overseer.window import AgentView, Limits, ModelCall, ToolStep, Window
from tests.support.config import jsonl, scripted_config

GOOD = {"verdict": "looping", "agent": "main", "notify": "You viewed agent.py four times; edit it instead.",
        "cancel": "none", "notes": "watch for more views", "next_look_s": 10}


def review(serve, make_settings, script, *, wire="openai", limit_usd=None):
    keys = {"wire": wire, "price": {"input": 1.0, "output": 2.0}} if wire == "anthropic" else {}
    settings = make_settings(scripted_config({"judge": keys}), {"script.jsonl": jsonl(script)})
    running = serve(settings)
    attempt = running.gateway.open_account("p1 run1", limit_usd=1.0)
    own = running.gateway.open_account("overseer p1 run1", parent=attempt.id, limit_usd=limit_usd,
                                       aliases=frozenset({"judge"}))

    async def go():
        async with running.client(own.token) as client:
            return await Reviewer(client, ReviewModel("judge", wire)).review("the window")

    return asyncio.run(go()), running, own


def test_a_good_judgement_is_parsed(serve, make_settings):
    outcome, running, own = review(serve, make_settings, [{"content": json.dumps(GOOD)}])
    assert outcome.reason is None
    assert outcome.judgement == Judgement(**{**GOOD, "next_look_s": 10.0})
    [row] = running.gateway.ledger.calls(own.id)
    assert row["status"] == "ok" and "the window" in row["request_body"]


def test_a_fenced_judgement_on_the_anthropic_wire(serve, make_settings):
    fenced = "```json\n" + json.dumps({"verdict": "progressing", "notes": "fine"}) + "\n```"
    outcome, _, _ = review(serve, make_settings, [{"content": fenced}], wire="anthropic")
    assert outcome.judgement is not None and outcome.judgement.verdict == "progressing"
    assert outcome.judgement.cancel == "none" and outcome.judgement.notify is None


def test_a_malformed_judgement_is_retried_once(serve, make_settings):
    outcome, running, own = review(serve, make_settings, [{"content": "I think it is fine"},
                                                          {"content": json.dumps(GOOD)}])
    assert outcome.judgement is not None and len(outcome.replies) == 2
    second = json.loads(list(running.gateway.ledger.calls(own.id))[1]["request_body"])
    assert "not a valid judgement" in second["messages"][-1]["content"]


def test_a_judgement_malformed_twice_is_ignored_with_the_reason(serve, make_settings):
    bad = {**GOOD, "verdict": "bored", "extra": 1}
    outcome, _, _ = review(serve, make_settings, [{"content": "not json"}, {"content": json.dumps(bad)}])
    assert outcome.judgement is None
    assert outcome.reason is not None and outcome.reason.startswith("malformed judgement twice: verdict")


def test_the_overseers_budget_is_enforced_by_the_gateway(serve, make_settings):
    outcome, _, _ = review(serve, make_settings, [{"content": json.dumps(GOOD)}], limit_usd=1e-9)
    assert outcome.judgement is None and outcome.reason is not None and "402" in outcome.reason


@pytest.mark.parametrize(
    "reply",
    ['{"verdict": "looping", "cancel": "maybe"}', '{"verdict": "looping", "next_look_s": "10"}',
     '{"verdict": "looping", "surprise": true}', '["looping"]', '{"verdict": "looping", "next_look_s": 0}'],
)
def test_parsing_is_strict(reply):
    with pytest.raises(JudgementError):
        parse_judgement(reply)


def test_the_rendering_shows_agents_steps_findings_and_notes():
    window = Window(Limits(started_at=0.0, time_limit_s=600, budget_usd=1.0))
    window.now, window.spent_usd = 120.0, 0.25
    window.agents["main"] = AgentView("main", None, "coder", 0.0, model_calls=3, tool_calls=2)
    window.agents["sub"] = AgentView("sub", "main", "reasoner", 10.0, status="done", ended_at=20.0)
    window.steps.append(ToolStep("main", 5.0, "view", '{"path": "a.py"}', "c1", True, "x" * 5000, "d", True))
    window.steps.append(ToolStep("main", 6.0, "run", '{"command": "pytest"}', "c2", False, "1 failed", "e", True))
    window.calls.append(ModelCall(1, "acct", 1.0, "ok", 200, None, 10, 5, 0.001, 0.2, "let me see", 1))
    text = render_window(window, [Finding("no_progress", None, "8 tool steps")], "last time: it viewed a.py",
                         task="Fix the parser.", actions=["at step 1: told main: stop viewing a.py"])
    assert text.startswith("Task: Fix the parser.\n")
    assert "Tool steps so far: 2. Your actions so far:\n- at step 1: told main: stop viewing a.py" in text
    assert "120 s of 600 s, $0.2500 of $1.0000 spent" in text
    assert "- sub parent=main reasoner done 10s" in text
    assert "! [main] run" in text and "no_progress [attempt]: 8 tool steps" in text
    assert "last time: it viewed a.py" in text and "let me see" in text
    assert len(text) < 3000  # a 5000-character result is cut


def test_the_schema_sent_asks_for_whole_seconds_in_range_and_the_parser_takes_them():
    schema = request_schema()
    assert schema["properties"]["next_look_s"] == {"type": "integer", "minimum": 1, "maximum": 3600, "default": 30}
    assert set(schema["required"]) == {"verdict"} and schema["additionalProperties"] is False
    assert parse_judgement('{"verdict": "looping", "next_look_s": 20}').next_look_s == 20.0
    assert "next_look_s" in Judgement.model_json_schema()["properties"]


@pytest.mark.parametrize("said", ["none", " None ", "null", "", "N/A"])
def test_a_notice_that_says_there_is_none_is_none(said):
    assert parse_judgement(json.dumps({"verdict": "progressing", "notify": said})).notify is None
    assert parse_judgement('{"verdict": "looping", "notify": " Stop. "}').notify == "Stop."
