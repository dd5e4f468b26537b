"""The overseer wired into every attempt, through the real `sica eval` (bwrap sandbox, gateway, scripted models):
the agent's model is the scripted alias `fake`, the overseer's the scripted alias `judge`, whose replies are the
judgements. A looping agent is cancelled and says so in its result; one that ignores the cancel is ended after the
grace period; a healthy one is left alone; with no overseer role nothing changes."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from sica.archive import Run
from sica.archive.run_db import OverseerEntry
from sica.config import UtilitySettings
from sica.loop.archive_view import write_archive_view
from sica.overseer.inbox import post_notice
from sica.report import gather_report, write_report
from sica.runner.attempt import _send_cancel
from sica.runner.environments import seed_agent_dir
from tests.support.cli import run_sica
from tests.support.config import ENVS, EVAL, scripted_config, write_config
from tests.support.evals import SOLVE_SCRIPT, make_tasks, results_of
from tests.support.hostile import hostile_agent
from tests.support.runs import Result

TASK = "taskdir:{tasks}"
#: Reviews soon and often, so a short scripted run gets some.
OFTEN = {"interval_s": 0.3, "poll_s": 0.1}
#: Reviews only when a detector finds something (the interval is longer than the run), so a cancel comes once the
#: agent is seen repeating itself.
ON_FINDINGS = {"interval_s": 600, "poll_s": 0.1}


def judgement(verdict: str, cancel: str = "none", notify: str | None = None, agent: str | None = None
              ) -> dict[str, Any]:
    """A scripted reply of the overseer's model: the judgement as its text."""
    said = {"verdict": verdict, "agent": agent, "notify": notify, "cancel": cancel, "notes": "", "next_look_s": 1}
    return {"content": json.dumps(said), "usage": {"input": 100, "output": 20}}


def evaluate(home: Path, script: list[dict[str, Any]], judgements: list[dict[str, Any]] | None,
             agent: Path | None = None, overseer: dict[str, Any] = OFTEN, budget_usd: float | None = None
             ) -> dict[str, Any]:
    """One problem evaluated in `home` with the agent's model replaying `script`, overseen (`[overseer]` keys
    `overseer`) by a model replaying `judgements` (None: no overseer role); its result. `budget_usd` is the
    attempt's (`[eval]`), of which the overseer's is a share."""
    make_tasks(home / "tasks", {"write-done": "ok"})
    aliases: dict[str, dict[str, Any]] = {"fake": {}}
    budget = {} if budget_usd is None else {"budget_usd": budget_usd}
    tables: dict[str, dict[str, Any]] = {"eval": {**EVAL, "infra_retries": 0, "time_limit_s": 60, **budget},
                                         "solve": {"cancel_grace_s": 1}, "overseer": overseer}
    scripts = {"script.jsonl": script}
    if judgements is not None:
        aliases["judge"] = {"script": "judge.jsonl"}
        tables["roles"] = {"main": "fake", "overseer": "judge"}
        scripts["judge.jsonl"] = judgements
    write_config(home, scripted_config(aliases, **tables), scripts)
    args = ["eval", "-b", TASK.format(tasks=home / "tasks"), "--workers", "1"]
    done = run_sica(home, *args, *(("--agent", str(agent)) if agent else ()), timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = results_of(home)
    return result


def records(result: dict[str, Any]) -> list[dict[str, Any]]:
    path = Path(result["folder"]) / "overseer.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


#: The seed agent viewing the same file again and again, slowly enough for the overseer to look in between.
LOOPING = [{"tool_calls": [{"name": "view", "arguments": {"path": "README"}}], "latency_s": 0.2,
            "usage": {"input": 100, "output": 10}}] * 150
#: `SOLVE_SCRIPT`, each step taking a second, so the overseer reviews it as it goes.
HEALTHY = [{**line, "latency_s": 1.0} for line in SOLVE_SCRIPT]


def test_a_looping_agent_is_cancelled_by_the_overseer_and_its_result_says_so(tmp_path: Path):
    result = evaluate(tmp_path, LOOPING, [judgement("looping", "run")] * 20, overseer=ON_FINDINGS)
    assert result["status"] == "cancelled"
    assert result["overseer"].startswith("overseer: cancelled at step ")
    assert ", looping on view README" in result["overseer"]
    assert "not honoured" not in result["overseer"]
    assert "## Overseer" in result["trace_summary"] and "looping [top agent] cancel run" in result["trace_summary"]
    actions = [r["data"] for r in records(result) if r["type"] == "action"]
    assert actions[0]["action"] == "cancel" and actions[0]["delivered"] is True
    outcome = json.loads((Path(result["folder"]) / "outcome.json").read_text())
    assert outcome["overseer"] == result["overseer"] and outcome["marked_for_review"] is False
    assert outcome["summary"].startswith("cancelled by the overseer (looping); the agent stopped")


def test_a_healthy_run_is_left_alone(tmp_path: Path):
    result = evaluate(tmp_path, HEALTHY, [judgement("progressing")] * 40)
    assert (result["status"], result["score"]) == ("done", 1.0)
    assert result["overseer"].startswith("overseer: ") and result["overseer"].endswith(", progressing")
    assert "cancel" not in result["overseer"]
    assert not [r for r in records(result) if r["type"] == "action"]
    assert [r for r in records(result) if r["type"] == "judgement"]


def test_an_agent_ignoring_the_cancel_is_ended_after_the_grace_period(tmp_path: Path):
    """It never reads its inbox and goes on repeating one tool call: the sandbox is ended 1 s after the cancel."""
    actions = """
        for n in range(600):
            _emit("tool_call", tool="view", arguments={"path": "README"}, call_id=f"c{n}")
            _emit("tool_result", tool="view", call_id=f"c{n}", ok=True, output="start")
            time.sleep(0.1)
    """
    agent = hostile_agent(tmp_path / "agent", actions)
    result = evaluate(tmp_path, SOLVE_SCRIPT, [judgement("looping", "run")] * 20, agent=agent,
                      overseer=ON_FINDINGS)
    assert result["status"] == "cancelled"
    assert "not honoured within the grace period, the sandbox was ended" in result["overseer"]
    outcome = json.loads((Path(result["folder"]) / "outcome.json").read_text())
    assert "did not stop within the grace period" in outcome["summary"]
    assert outcome["seconds"] < 30


def test_a_tampering_judgement_marks_the_result_for_review_and_never_raises_its_score(tmp_path: Path):
    result = evaluate(tmp_path, HEALTHY, [judgement("tampering")] * 40)
    assert (result["status"], result["score"]) == ("done", 1.0)
    assert "marked for review: the overseer judged it tampering" in result["overseer"]
    outcome = json.loads((Path(result["folder"]) / "outcome.json").read_text())
    assert outcome["marked_for_review"] is True


def test_with_no_overseer_role_nothing_changes(tmp_path: Path):
    result = evaluate(tmp_path, SOLVE_SCRIPT, None)
    assert (result["status"], result["score"], result["overseer"]) == ("done", 1.0, "")
    assert not (Path(result["folder"]) / "overseer.jsonl").exists()
    assert "## Overseer" not in result["trace_summary"]


@pytest.mark.parametrize("before", [["000000.json", "000001.json"], ["000005.json"]])
def test_the_runners_cancel_is_numbered_after_every_notice_as_the_overseers_are(tmp_path: Path, before: list[str]):
    (tmp_path / "inbox").mkdir()
    for name in before:
        (tmp_path / "inbox" / name).write_text("{}")
    _send_cancel(tmp_path, "main")
    post_notice(tmp_path, "notify", "main", "after the cancel")
    names = sorted(p.name for p in (tmp_path / "inbox").iterdir())
    last = int(before[-1][:6])
    assert names == sorted([*before, f"{last + 1:06d}.json", f"{last + 2:06d}.json"])
    cancel = json.loads((tmp_path / "inbox" / f"{last + 1:06d}.json").read_text())
    assert cancel == {"type": "cancel", "agent_id": "main", "text": "stopped by the user"}


def test_the_run_keeps_the_overseers_line_the_archive_view_shows_its_judgements_and_the_report_the_mark(
    tmp_path: Path,
):
    """A failure's overseer part reaches the meta agent through the archive view; a result marked for review is
    counted in the report's version table, its score untouched."""
    line = "overseer: 2 reviews, tampering; marked for review: the overseer judged it tampering"
    trace = f"## Problem\n\nfix it\n\n## Overseer\n\n{line}\n\nIts judgements:\n\n- tampering [top agent]\n"
    with Run.create(tmp_path / "run", seed_agent_dir(), {}) as run:
        run.record_evaluation(0, Result("toy/0", 0.0, status="done", trace_summary=trace, overseer=line))
        run.record_evaluation(0, Result("toy/1", 1.0, status="done"))
        view = write_archive_view(run, tmp_path / "view", UtilitySettings())
        assert [e.overseer for e in run.db.evaluations(0)] == [line, ""]
    (failure,) = (view / "agent-0" / "failures").iterdir()
    assert "## Overseer" in failure.read_text() and "- tampering [top agent]" in failure.read_text()
    with Run.open(tmp_path / "run", read_only=True) as reader:
        report = gather_report(reader, UtilitySettings())
        (version,) = report.versions
        assert (version.marked_for_review, version.tampered) == (1, 0)
        written = write_report(report, tmp_path / "out")
    markdown = next(p for p in written if p.suffix == ".md").read_text()
    assert "1 marked for review by the overseer" in markdown


def test_sica_solve_is_overseen_too_and_prints_the_overseers_line(tmp_path: Path):
    make_tasks(tmp_path / "tasks", {"write-done": "ok"})
    aliases = {"fake": {}, "judge": {"script": "judge.jsonl"}}
    config = scripted_config(aliases, solve={"solves_dir": "solves"}, roles={"main": "fake", "overseer": "judge"},
                             overseer=OFTEN)
    write_config(tmp_path, config, {"script.jsonl": HEALTHY, "judge.jsonl": [judgement("progressing")] * 40})
    done = run_sica(tmp_path, "solve", "--task-dir", str(tmp_path / "tasks" / "write-done"))
    assert done.returncode == 0, done.stderr
    assert "overseer: " in done.stderr and ", progressing" in done.stderr
    (folder,) = (tmp_path / "solves").iterdir()
    assert (folder / "overseer.jsonl").read_text().count('"judgement"') >= 1


def agent_requests(home: Path) -> list[str]:
    """The request bodies of the agent's model calls (alias `fake`) in the evaluation's ledger, oldest first."""
    (ledger,) = home.glob("evals/*/ledger.sqlite")
    with closing(sqlite3.connect(ledger)) as db:
        rows = db.execute("SELECT request_body FROM calls WHERE alias = 'fake' ORDER BY id").fetchall()
    return [row[0] or "" for row in rows]


def test_a_notification_reaches_the_agent_and_changes_what_its_model_is_sent(tmp_path: Path):
    """The first review (at the first finding) tells the looping agent what to do instead; the seed agent's next
    requests carry the notice (as the gateway's ledger recorded them), the ones before did not; then it is
    cancelled."""
    notice = "NOTICE-7f3: you keep viewing README; write done.txt instead"
    judgements = [judgement("looping", notify=notice), *[judgement("looping", "run")] * 20]
    result = evaluate(tmp_path, LOOPING, judgements, overseer=ON_FINDINGS)
    actions = [r["data"] for r in records(result) if r["type"] == "action"]
    assert actions[0] == {"action": "notify", "agent": "main-1", "text": notice, "delivered": True}
    requests = agent_requests(tmp_path)
    told = [n for n, body in enumerate(requests) if "NOTICE-7f3" in body]
    assert told and told[0] > 0 and told == list(range(told[0], len(requests)))
    assert result["status"] == "cancelled"


def test_a_malformed_judgement_in_an_attempt_is_retried_then_ignored_and_changes_nothing(tmp_path: Path):
    garbage = [{"content": "I think it is fine", "usage": {"input": 100, "output": 5}}] * 2
    result = evaluate(tmp_path, HEALTHY, [*garbage, *[judgement("progressing")] * 40])
    assert (result["status"], result["score"]) == ("done", 1.0)
    (ignored, *_) = [r["data"] for r in records(result) if r["type"] == "review_ignored"]
    assert ignored["reason"].startswith("malformed judgement twice") and len(ignored["replies"]) == 2
    assert "ignored)" in result["overseer"]
    assert not [r for r in records(result) if r["type"] == "action"]


def test_the_overseers_share_of_the_attempts_budget_is_enforced_by_the_gateway(tmp_path: Path):
    """The attempt may spend $0.05, its overseer a thousandth of it: less than one review's prompt costs, so the
    gateway refuses every review (however few tokens it could answer with) and the attempt goes on unharmed."""
    result = evaluate(tmp_path, HEALTHY, [judgement("looping", "run")] * 40, budget_usd=0.05,
                      overseer={**OFTEN, "budget_share": 0.001})
    assert (result["status"], result["score"]) == ("done", 1.0)
    ignored = [r["data"] for r in records(result) if r["type"] == "review_ignored"]
    assert ignored and all("402" in r["reason"] for r in ignored)
    assert not [r for r in records(result) if r["type"] in ("judgement", "action")]
    (ledger,) = tmp_path.glob("evals/*/ledger.sqlite")
    with closing(sqlite3.connect(ledger)) as db:
        assert db.execute("SELECT count(*) FROM calls WHERE alias = 'judge' AND status = 'ok'").fetchone() == (0,)


#: An agent whose sub-agent `sub-1` repeats one tool call; with `HONOURS`, it ends the sub-agent when its inbox
#: holds a cancel of it, and the top agent then writes done.txt.
SUB_AGENT = """
    def sub(event_type, **data):
        line = {"v": 1, "ts": time.time(), "run": os.environ.get("SICA_AGENT_RUN_ID", ""),
                "problem": os.environ.get("SICA_AGENT_PROBLEM_ID", ""), "agent_id": "sub-1", "parent_id": "main",
                "type": event_type, "data": data}
        with open(logdir / "events.jsonl", "a") as events:
            events.write(json.dumps(line) + "\\n")

    def cancelled():
        notices = sorted((logdir / "inbox").glob("*.json")) if (logdir / "inbox").is_dir() else []
        return any(json.loads(p.read_text()) == {**json.loads(p.read_text()), "type": "cancel", "agent_id": "sub-1"}
                   for p in notices)

    sub("agent_start", kind="explorer", task="look around", model="hostile")
    for n in range(600):
        if HONOURS and cancelled():
            sub("agent_end", status="cancelled", summary="cancelled by the overseer", steps=n)
            break
        sub("tool_call", tool="view", arguments={"path": "README"}, call_id=f"c{n}")
        sub("tool_result", tool="view", call_id=f"c{n}", ok=True, output="start")
        time.sleep(0.1)
    (workdir / "done.txt").write_text("ok\\n")
"""


def test_a_sub_agent_ignoring_its_cancel_gets_the_sandbox_ended_after_the_grace_period(tmp_path: Path):
    agent = hostile_agent(tmp_path / "agent", "HONOURS = False\n" + textwrap.dedent(SUB_AGENT))
    result = evaluate(tmp_path, SOLVE_SCRIPT, [judgement("looping", "agent", agent="sub-1")] * 20, agent=agent,
                      overseer=ON_FINDINGS)
    assert result["status"] == "cancelled"
    assert result["overseer"].startswith("overseer: cancelled sub-1 at step ")
    assert "not honoured within the grace period, the sandbox was ended" in result["overseer"]
    outcome = json.loads((Path(result["folder"]) / "outcome.json").read_text())
    assert outcome["summary"].startswith("its sub-agent sub-1 was cancelled by the overseer (looping)")
    assert outcome["seconds"] < 30
    actions = [r["data"] for r in records(result) if r["type"] == "action"]
    assert actions[0] == {"action": "cancel", "scope": "agent", "agent": "sub-1", "delivered": True}
    assert actions[-1] == {"action": "end_sandbox", "agent": "sub-1", "reason": "cancel not honoured"}


def test_a_sub_agent_honouring_its_cancel_lets_the_run_go_on(tmp_path: Path):
    agent = hostile_agent(tmp_path / "agent", "HONOURS = True\n" + textwrap.dedent(SUB_AGENT))
    result = evaluate(tmp_path, SOLVE_SCRIPT, [judgement("looping", "agent", agent="sub-1")] * 20, agent=agent,
                      overseer=ON_FINDINGS)
    assert (result["status"], result["score"]) == ("done", 1.0)
    assert "cancelled sub-1, which stopped" in result["overseer"]
    assert not [r for r in records(result) if r["data"].get("action") == "end_sandbox"]


def test_a_meta_step_is_overseen_and_its_line_kept_in_the_run(tmp_path: Path):
    """`sica improve` with an overseer role: the meta agent repeating itself is cancelled; the step's row in
    run.sqlite and the report keep the overseer's line, its folder the overseer's record."""
    make_tasks(tmp_path / "tasks", {"alpha": "ok"})
    aliases = {"task": {"script": "solve.jsonl"}, "meta": {"script": "meta.jsonl"}, "judge": {"script": "judge.jsonl"}}
    config = scripted_config(aliases, loop={"meta_model": "meta", "stages": [1]}, solve={"envs_dir": ENVS},
                             eval={"results_dir": "evals"}, roles={"main": "task", "overseer": "judge"},
                             overseer=ON_FINDINGS)
    write_config(tmp_path, config, {"solve.jsonl": SOLVE_SCRIPT, "meta.jsonl": LOOPING,
                                    "judge.jsonl": [judgement("looping", "run")] * 20})
    done = run_sica(tmp_path, "improve", "-b", f"taskdir:{tmp_path / 'tasks'}", "--iterations", "1",
                    "--run", "r1", "--model", "task", timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    with Run.open(tmp_path / "runs" / "r1", read_only=True) as run:
        (step,) = run.db.meta_steps()
        assert step.state == "failed" and step.overseer.startswith("overseer: cancelled at step ")
        kept = run.db.overseer_entries(meta_step=step.id)
        assert [e.type for e in kept][:3] == ["finding", "judgement", "action"]
        assert json.loads(kept[2].data) == {"action": "cancel", "scope": "run", "agent": "main-1", "delivered": True}
    folder = tmp_path / "runs" / "r1" / "meta" / "iteration-1"
    assert '"action": "cancel"' in (folder / "overseer.jsonl").read_text()
    done = run_sica(tmp_path, "report", "r1")
    assert done.returncode == 0, done.stderr
    (markdown,) = (tmp_path / "runs" / "r1").rglob("report.md")
    assert "overseer: cancelled at step" in markdown.read_text()


def test_the_overseers_record_of_a_result_is_kept_in_the_run_and_replaced_with_the_result(tmp_path: Path):
    """A retried result brings its own record; a tampered result, never replaced, keeps the record it had."""
    first = [OverseerEntry(1.0, "judgement", '{"verdict": "looping"}'), OverseerEntry(2.0, "action", '{"x": 1}')]
    second = [OverseerEntry(3.0, "judgement", '{"verdict": "progressing"}')]
    with Run.create(tmp_path / "run", seed_agent_dir(), {}) as run:
        run.record_evaluation(0, Result("toy/0", 0.0, status="error"), 0, first)
        assert run.db.overseer_entries(version=0, problem_id="toy/0") == first
        run.record_evaluation(0, Result("toy/0", 1.0, status="done"), 0, second)
        assert run.db.overseer_entries(version=0, problem_id="toy/0") == second
        run.record_evaluation(0, Result("toy/1", 0.0, status="tampered"), 0, first)
        run.record_evaluation(0, Result("toy/1", 1.0, status="done"), 0, second)
        assert run.db.overseer_entries(version=0, problem_id="toy/1") == first
        assert run.db.overseer_entries(version=0, problem_id="toy/0", repeat=1) == []



def steps(*calls: dict[str, Any], times: int) -> list[dict[str, Any]]:
    """A scripted trajectory repeating `calls` `times` over, a step every 0.2 s."""
    return [{**call, "latency_s": 0.2, "usage": {"input": 100, "output": 10}} for call in calls] * times


def call(tool: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": tool, "arguments": arguments}]}


@pytest.mark.parametrize(("script", "kind"), [
    (steps(call("view", path="README"), times=60), "repeated_action_observation"),
    (steps(call("view", path="missing.txt"), times=60), "repeated_action_error"),
    (steps(call("view", path="README"), call("run", command="cat README"), times=30), "alternation"),
    (steps(call("run", command="ls"), call("run", command="pwd"), call("run", command="cat README"), times=20),
     "no_progress"),
], ids=["repeat", "error", "alternate", "stall"])
def test_each_stuck_pattern_of_the_seed_agent_is_found_and_brings_the_cancel(tmp_path: Path, script, kind):
    """The real seed agent on a scripted trajectory of each pattern; reviews only come with findings."""
    result = evaluate(tmp_path, script, [judgement("looping", "run")] * 20, overseer=ON_FINDINGS)
    assert result["status"] == "cancelled" and result["overseer"].startswith("overseer: cancelled at step ")
    found = [r["data"]["kind"] for r in records(result) if r["type"] == "finding"]
    assert kind in found, found
    assert records(result)[0]["type"] == "finding"  # the first review came with a finding, not the clock


def test_an_agent_talking_without_acting_is_found_and_cancelled(tmp_path: Path):
    """The seed ends itself after a few replies with no tool call (its own guard), so a hostile agent talks on."""
    actions = """
        for n in range(300):
            call_model({"model": "fake", "messages": [{"role": "user", "content": f"step {n}"}]})
            _emit("llm_call", model="fake", input_tokens=100, output_tokens=10)
            _emit("message", text="Let me think about this some more.")
            time.sleep(0.1)
    """
    agent = hostile_agent(tmp_path / "agent", actions)
    chatter = [{"content": "thinking", "usage": {"input": 100, "output": 10}}] * 300
    result = evaluate(tmp_path, chatter, [judgement("looping", "run")] * 20, agent=agent, overseer=ON_FINDINGS)
    assert "talking_without_acting" in [r["data"]["kind"] for r in records(result) if r["type"] == "finding"]
    assert result["status"] == "cancelled"


def test_an_agent_writing_no_events_but_calling_its_model_is_judged_from_the_ledger(tmp_path: Path):
    actions = """
        for n in range(200):
            call_model({"model": "fake", "messages": [{"role": "user", "content": f"step {n}"}]})
            time.sleep(0.05)
    """
    agent = hostile_agent(tmp_path / "agent", actions)
    chatter = [{"content": "thinking", "usage": {"input": 100, "output": 10}}] * 200
    result = evaluate(tmp_path, chatter, [judgement("looping", "run")] * 20, agent=agent, overseer=ON_FINDINGS)
    found = {r["data"]["kind"]: r["data"]["evidence"] for r in records(result) if r["type"] == "finding"}
    assert "silent" in found and "model calls since the agent's last event" in found["silent"]
    assert result["status"] == "cancelled"
    assert "not honoured within the grace period, the sandbox was ended" in result["overseer"]
