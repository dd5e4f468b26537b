"""`sica improve`'s loop end to end with scripted models through the real gateway, sandbox, git and SQLite: agent 0
is evaluated, each iteration's meta agent edits a copy of the base, the result is validated, committed and
evaluated in stages; a resumed run carries on from its stored state; a broken change is recorded as invalid."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from sica.archive import Run
from sica.config import load_settings
from sica.loop.evaluation import Evaluations, Mix
from sica.loop.improve import ImproveRequest, improve
from sica.runner.environments import seed_agent_dir
from sica.runner.setup import serve_gateway
from tests.support.cli import run_sica
from tests.support.config import write_improve_config
from tests.support.evals import SOLVE_SCRIPT, make_tasks


def run_loop(home: Path, iterations: int, resume: bool = False, statuses: list[str] | None = None) -> list[str]:
    lines: list[str] = []
    request = ImproveRequest(home / "runs" / "r1", [f"taskdir:{home / 'tasks'}"], [], iterations, model="task",
                             resume=resume)
    asyncio.run(improve(load_settings(home / "sica.toml", {}), {}, request, lines.append, asyncio.Event(),
                        on_status=(statuses if statuses is not None else []).append))
    return lines


def test_iterations_commit_validate_and_evaluate_versions_and_resume(tmp_path):
    make_tasks(tmp_path / "tasks", {"alpha": "ok", "beta": "ok", "gamma": "other", "delta": "ok"})
    write_improve_config(tmp_path, [
        {"tool_calls": [{"name": "create", "arguments": {"path": "description.txt",
                                                        "content": "agent N: plans before it edits\n"}}]},
        {"tool_calls": [{"name": "create", "arguments": {"path": "CHANGELOG.md",
                                                        "content": "- plans before editing: fewer steps\n"}}]},
        {"tool_calls": [{"name": "complete", "arguments": {"summary": "added planning"}}]},
    ])
    statuses: list[str] = []
    lines = run_loop(tmp_path, iterations=2, statuses=statuses)
    assert lines[0] == "evaluating agent 0"
    # Agent 1 scores as agent 0 did: it comes close, so agent 0, the best, solves the mix once more (repeat 1).
    assert lines[1].startswith("iteration 1: agent-1 from agent-0 by agent-0 · score 0.750 (all; agent-0"
                               " re-evaluated (came close: +0.000 ± 0.000 on 4 shared problems))")
    for shown in ("evaluating agent-0: 4/4 problems", "iteration 1: agent-0 edits agent-0 · step ",
                  "iteration 1: validating the new version", "iteration 1: the new version on a smoke problem",
                  "evaluating agent-1, stage 1 of 2: 2/2 problems", "evaluating agent-1, the whole mix: 4/4 problems"):
        assert any(status.startswith(shown) for status in statuses), (shown, sorted(set(statuses)))
    # Agents 0 and 1 score and cost alike (times charged are the scripted latencies): agent 0 stays the best (a tie
    # keeps the earlier) and agent 1 is the most recent not provably worse, so the base: the same edit on agent 1's
    # code changes nothing, and an unchanged copy is no new version.
    assert lines[2].startswith("iteration 2: agent-2 from agent-1 by agent-")
    assert "invalid: the meta agent changed nothing" in lines[2]
    with Run.open(tmp_path / "runs" / "r1", read_only=True) as run:
        versions = run.versions()
        assert [(v.number, v.parent, v.state) for v in versions] == [(0, None, "valid"), (1, 0, "valid"),
                                                                     (2, 1, "invalid")]
        assert versions[1].description == "agent N: plans before it edits"
        assert "fewer steps" in versions[1].change_log
        assert "+agent N: plans before it edits" in run.diff(1)
        assert {e.problem_id.rsplit("/", 1)[1]: e.score for e in run.evaluations(1)} == {
            "alpha": 1.0, "beta": 1.0, "gamma": 0.0, "delta": 1.0}
        assert run.db.get_state("iteration") == 2 and run.db.get_state("plan")["iteration"] == 2
        assert (run.repeats(0), run.repeats(1), len(run.evaluations(0, every_repeat=True))) == (2, 1, 8)

    assert run_loop(tmp_path, iterations=3, resume=True)[0].startswith("iteration 3: agent-3")
    with Run.open(tmp_path / "runs" / "r1", read_only=True) as run:
        assert len(run.versions()) == 4 and len(run.evaluations(0)) == 4  # agent 0 was not evaluated again


def test_a_change_that_breaks_the_agent_is_recorded_invalid_and_not_evaluated(tmp_path):
    make_tasks(tmp_path / "tasks", {"alpha": "ok"})
    write_improve_config(tmp_path, [
        {"tool_calls": [{"name": "create", "arguments": {"path": "sica_agent/agent.py", "content": "def broken(:\n"}}]},
        {"tool_calls": [{"name": "complete", "arguments": {"summary": "rewrote the agent"}}]},
    ])
    lines = run_loop(tmp_path, iterations=1)
    assert "iteration 1: agent-1 from agent-0 by agent-0 · invalid: it does not import" in lines[1]
    with Run.open(tmp_path / "runs" / "r1", read_only=True) as run:
        assert run.version(1).state == "invalid" and "does not import" in (run.version(1).invalid_reason or "")
        assert run.evaluations(1) == []


def test_a_version_that_never_reports_how_it_ended_fails_the_smoke_problem(tmp_path):
    """It imports, compiles and passes its own tests, but `solve` returns at once, with no events: the smoke
    problem (answered by the built-in scripted alias, free) catches it before any evaluation."""
    make_tasks(tmp_path / "tasks", {"alpha": "ok"})
    write_improve_config(tmp_path, [
        {"tool_calls": [{"name": "replace", "arguments": {
            "path": "sica_agent/__main__.py", "old": "result = solve(settings, args.task, args.workdir, args.logdir)",
            "new": "return 0"}}]},
        {"tool_calls": [{"name": "complete", "arguments": {"summary": "a shortcut"}}]},
    ])
    lines = run_loop(tmp_path, iterations=1)
    assert ("iteration 1: agent-1 from agent-0 by agent-0 · invalid: it fails a smoke problem: it ended error, "
            "not done (") in lines[1]
    with Run.open(tmp_path / "runs" / "r1", read_only=True) as run:
        assert run.version(1).state == "invalid" and run.evaluations(1) == []
        assert (run.folder / "meta" / "iteration-1" / "smoke" / "outcome.json").is_file()


def test_the_command_runs_an_iteration_and_refuses_bad_input(tmp_path):
    make_tasks(tmp_path / "tasks", {"alpha": "ok"})
    write_improve_config(tmp_path, [
        {"tool_calls": [{"name": "create", "arguments": {"path": "description.txt", "content": "agent 1\n"}}]},
        {"tool_calls": [{"name": "complete", "arguments": {"summary": "renamed"}}]},
    ])
    done = run_sica(tmp_path, "improve", "-b", f"taskdir:{tmp_path / 'tasks'}", "--iterations", "1", "--model",
                    "task", "--run", "first")
    assert done.returncode == 0, done.stderr
    assert "iteration 1: agent-1 from agent-0 by agent-0 · score 1.000" in done.stdout
    reported = run_sica(tmp_path, "report", "first")
    assert reported.returncode == 0, reported.stderr
    report = (tmp_path / "runs" / "first" / "report.md").read_text()
    assert "| agent-1 | agent-0 | agent 1 |" in report and "- Spent: $0.00" in report  # agent 0's rematch too
    assert "- Models: task (scripted scripted)\n- Meta agent's models: meta (scripted scripted)\n" in report
    again = run_sica(tmp_path, "improve", "--resume", "first", "--iterations", "1")
    assert again.returncode == 0 and "0 iterations this time" in again.stderr
    for args, message in [([], "give the benchmarks"), (["--resume", "nope"], "no run 'nope'"),
                          (["--resume", "first", "-b", "humaneval"], "leave out --benchmark"),
                          (["-b", "humaneval", "--run", "first"], "exists already"),
                          (["-b", "humaneval", "--model", "nope"], "unknown model alias 'nope'")]:
        refused = run_sica(tmp_path, "improve", *args)
        assert refused.returncode == 1 and message in refused.stderr, (args, refused.stderr)
        assert len(refused.stderr.strip().splitlines()) == 1


def run_account_spend(run: Run) -> float:
    """The run account's settled spend, from the ledger in run.sqlite (and no call left pending)."""
    ledger = run.db._db
    assert ledger.execute("SELECT COUNT(*) FROM calls WHERE status = 'pending'").fetchone()[0] == 0
    (account,) = [row[0] for row in ledger.execute("SELECT id FROM accounts WHERE parent_id IS NULL")]
    return run_account_total(ledger, account)


def run_account_total(ledger, account: str) -> float:
    own = ledger.execute("SELECT COALESCE(SUM(cost_nano), 0) FROM calls WHERE account_id = ?", (account,)).fetchone()
    children = [row[0] for row in ledger.execute("SELECT id FROM accounts WHERE parent_id = ?", (account,))]
    return own[0] / 1e9 + sum(run_account_total(ledger, child) for child in children)


def test_the_run_budget_halts_the_loop_and_its_spend_is_carried_over(tmp_path):
    """The run's account holds its budget: agent 0's evaluation is halted when the account refuses a call (what
    was cut short is not recorded), a resume with the same budget stops at once, and one with a higher budget
    finishes the evaluation and iterates, its spend added to what the run had spent."""
    make_tasks(tmp_path / "tasks", {"alpha": "ok", "beta": "ok"})
    meta = [{"tool_calls": [{"name": "complete", "arguments": {"summary": "nothing"}}]}]
    one_call = {"workers": 1}  # one call at a time: which call is refused is known
    write_improve_config(tmp_path, meta, loop_keys={"budget_usd": 0.01}, eval_keys=one_call)
    lines = run_loop(tmp_path, iterations=1)
    assert lines[-1].startswith("the run's budget is spent: $0.00") and "of $0.0100" in lines[-1]
    assert run_loop(tmp_path, iterations=1, resume=True) == [lines[-1]]
    with Run.open(tmp_path / "runs" / "r1", read_only=True) as run:
        spent = run_account_spend(run)
        assert 0 < spent <= 0.01 and len(run.versions()) == 1
        assert all(e.status == "done" for e in run.evaluations(0)) and len(run.evaluations(0)) < 2, run.evaluations(0)
    write_improve_config(tmp_path, meta, loop_keys={"budget_usd": 1.0}, eval_keys=one_call)
    lines = run_loop(tmp_path, iterations=1, resume=True)
    assert lines[0] == "evaluating agent 0" and lines[-1].startswith("iteration 1: agent-1 from agent-0")
    with Run.open(tmp_path / "runs" / "r1", read_only=True) as run:
        assert sorted(e.problem_id.rsplit("/", 1)[-1] for e in run.evaluations(0)) == ["alpha", "beta"]
        assert run_account_spend(run) > spent + 0.00216  # beta's whole attempt again, and the meta step


def test_the_run_time_budget_halts_work_under_way_and_more_time_finishes_it(tmp_path):
    """`[loop] time_budget_s` is watched while work runs, not only between iterations: agent 0's evaluation is
    halted when the time is up (the problem cut short is not recorded), a resume with the same budget stops at
    once, and one with more time finishes the evaluation and iterates."""
    make_tasks(tmp_path / "tasks", {"alpha": "ok", "beta": "ok"})
    slow = [dict(line, latency_s=1.5) for line in SOLVE_SCRIPT]  # each problem takes over 3 s
    meta = [{"tool_calls": [{"name": "complete", "arguments": {"summary": "nothing"}}]}]
    write_improve_config(tmp_path, meta, slow, loop_keys={"time_budget_s": 2}, eval_keys={"workers": 1})
    started = time.monotonic()
    lines = run_loop(tmp_path, iterations=1)
    assert time.monotonic() - started < 30
    assert re.fullmatch(r"the run's time is up: \d+ s of 2 s; stopping", lines[-1]), lines
    with Run.open(tmp_path / "runs" / "r1", read_only=True) as run:
        assert run.evaluations(0) == [] and not run.db.get_state("agent-0 evaluated", False)
    assert run_loop(tmp_path, iterations=1, resume=True) == [lines[-1]]
    write_improve_config(tmp_path, meta, slow, loop_keys={"time_budget_s": 600}, eval_keys={"workers": 1})
    lines = run_loop(tmp_path, iterations=1, resume=True)
    assert lines[0] == "evaluating agent 0" and lines[-1].startswith("iteration 1: agent-1 from agent-0"), lines
    with Run.open(tmp_path / "runs" / "r1", read_only=True) as run:
        assert sorted(e.problem_id.rsplit("/", 1)[-1] for e in run.evaluations(0)) == ["alpha", "beta"]


def test_meta_steps_are_recorded(tmp_path):
    make_tasks(tmp_path / "tasks", {"alpha": "ok"})
    write_improve_config(tmp_path, [
        {"tool_calls": [{"name": "create", "arguments": {"path": "description.txt", "content": "agent 1\n"}}]},
        {"tool_calls": [{"name": "complete", "arguments": {"summary": "renamed"}}]},
    ])
    run_loop(tmp_path, iterations=1)
    with Run.open(tmp_path / "runs" / "r1", read_only=True) as run:
        (step,) = run.db.meta_steps()
        assert (step.iteration, step.meta_version, step.base_version, step.state, step.result_version) == (
            1, 0, 0, "done", 1)
        assert step.cost_usd > 0 and step.ended_at is not None


def test_a_repeat_evaluation_is_recorded_beside_the_first(tmp_path):
    """`Evaluations.evaluate(..., repeat=1)` attempts the problems again (not the first evaluation's stored results)
    and records each result as repeat 1; the first evaluation's rows are left as they were."""
    tasks = make_tasks(tmp_path / "tasks", {"alpha": "ok", "gamma": "other"})
    settings = load_settings(write_improve_config(tmp_path, []), {})
    mix = Mix([f"taskdir:{tasks}"], [], "task", "bwrap")

    async def evaluate_twice(run: Run) -> None:
        async with serve_gateway(settings, {}, {"task"}, tmp_path / "ledger.sqlite", tmp_path) as gateway:
            account = gateway.gateway.open_account("run").id
            evaluations = Evaluations(settings, run, gateway, mix, asyncio.Event(), lambda status: None)
            await evaluations.evaluate(0, None, account, "agent-0")
            first = run.evaluations(0)
            await evaluations.evaluate(0, frozenset({f"taskdir:{tasks}/alpha"}), account, "agent-0, again", repeat=1)
            assert run.evaluations(0) == first

    with Run.create(tmp_path / "runs" / "r1", seed_agent_dir(), {}) as run:
        asyncio.run(evaluate_twice(run))
        assert [(e.problem_id.rsplit("/", 1)[1], e.repeat, e.score) for e in run.evaluations(0, every_repeat=True)] == [
            ("alpha", 0, 1.0), ("alpha", 1, 1.0), ("gamma", 0, 0.0)]
        assert run.repeats(0) == 2
    with closing(sqlite3.connect(tmp_path / "evals" / "results.sqlite")) as db:  # repeat 1 ran: a result of its own
        assert db.execute("SELECT count(*) FROM results").fetchone() == (3,)
