"""`sica eval` end to end: the seed agent, driven by a scripted model through the real gateway and the real
bwrap sandbox, on a mix of task folders; results cached, resumed after an interrupt, infrastructure failures
retried and reported apart, never scored."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path

import pytest

from sica.archive import Run
from sica.benchmarks.base import Problem
from sica.config import load_settings
from sica.runner.environments import seed_agent_dir
from sica.runner.attempt import AttemptLimits, charged_seconds
from sica.runner.evaluate import EvalConfig, EvalReport, EvalRequest, run_eval
from sica.runner.setup import serve_gateway
from sica.runner.results import ProblemResult, ResultStore, from_cache, result_key
from sica.runner.stats import mean_interval
from tests.support.cli import clean_environ, interrupt_when, run_sica
from tests.support.config import write_eval_config
from tests.support.evals import SOLVE_SCRIPT, make_tasks, results_of


@pytest.fixture
def home(tmp_path: Path) -> Path:
    make_tasks(tmp_path / "tasks", {"alpha": "ok", "beta": "ok", "gamma": "other", "delta": "ok", "eps": "no"})
    write_eval_config(tmp_path, SOLVE_SCRIPT)
    return tmp_path


def test_eval_scores_caches_and_reports_per_benchmark(home):
    tasks = home / "tasks"
    done = run_sica(home, "eval", "--benchmark", f"taskdir:{tasks}", "--workers", "2", "--verbose")
    assert done.returncode == 0, done.stderr
    results = results_of(home)
    scores = {r["problem_id"].rsplit("/", 1)[1]: r["score"] for r in results}
    assert scores == {"alpha": 1.0, "beta": 1.0, "delta": 1.0, "gamma": 0.0, "eps": 0.0}
    for result in results:
        assert result["status"] == "done" and not result["cached"] and not result["infra"]
        # The gateway's account: 2100 input tokens at $1/M and 30 output tokens at $2/M, per problem.
        assert (result["input_tokens"], result["output_tokens"]) == (2100, 30)
        assert result["cost_usd"] == pytest.approx(0.00216)
        # Charged the latencies its scripted calls declare (none), not the measured time: reproducible.
        assert result["seconds"] == 0.0 and result["queued_s"] >= 0
        assert (Path(result["folder"]) / "diff.patch").read_text().count("+ok") == 1
    expected = mean_interval([1, 1, 1, 0, 0])
    assert str(expected) in done.stdout and "0.600 ±" in done.stdout
    assert "alpha" in done.stdout and "taskdir" in done.stdout  # --verbose: a row per problem

    rerun = run_sica(home, "eval", "--benchmark", f"taskdir:{tasks}")
    assert rerun.returncode == 0, rerun.stderr
    again = results_of(home)
    assert all(r["cached"] for r in again)
    assert {r["problem_id"]: r["score"] for r in again} == {r["problem_id"]: r["score"] for r in results}
    assert not (Path(rerun.stderr.split("results: ")[1].strip()).parent / "ledger.sqlite").exists()

    fresh = run_sica(home, "eval", "--benchmark", f"taskdir:{tasks}", "--fresh")
    assert fresh.returncode == 0 and not any(r["cached"] for r in results_of(home))
    with sqlite3.connect(home / "evals" / "results.sqlite") as db:
        assert db.execute("SELECT count(*) FROM results").fetchone() == (5,)


def test_a_changed_agent_or_script_is_not_served_from_the_cache(home, tmp_path):
    tasks = home / "tasks"
    assert run_sica(home, "eval", "-b", f"taskdir:{tasks}").returncode == 0
    script = json.loads(json.dumps(SOLVE_SCRIPT))
    script[0]["tool_calls"][0]["arguments"]["content"] = "other\n"
    write_eval_config(home, script)
    assert run_sica(home, "eval", "-b", f"taskdir:{tasks}").returncode == 0
    results = results_of(home)
    assert not any(r["cached"] for r in results)
    assert {r["problem_id"].rsplit("/", 1)[1] for r in results if r["score"] == 1.0} == {"gamma"}


def test_holdout_is_reported_apart_and_never_overlaps(home):
    tasks = home / "tasks"
    done = run_sica(home, "eval", "-b", "humaneval:2", "--holdout", "humaneval:1", "-b", f"taskdir:{tasks}")
    assert done.returncode == 0, done.stderr
    parts = {(r["benchmark"], r["part"]): [] for r in results_of(home)}
    for r in results_of(home):
        parts[(r["benchmark"], r["part"])].append(r["problem_id"])
    assert sorted(parts[("humaneval:2", "selection")]) == ["humaneval/0", "humaneval/1"]
    assert parts[("humaneval:1", "holdout")] == ["humaneval/2"]
    assert "holdout" in done.stdout and "selection" in done.stdout

    bad = run_sica(home, "eval", "-b", "humaneval", "--holdout", "humaneval:1")
    assert bad.returncode == 1 and "give the selection a count" in bad.stderr


def test_interrupted_eval_keeps_what_finished_and_a_rerun_does_the_rest(home):
    slow = [dict(line, latency_s=1.5) for line in SOLVE_SCRIPT]
    write_eval_config(home, slow)
    tasks = home / "tasks"
    process = subprocess.Popen([sys.executable, "-m", "sica", "eval", "-b", f"taskdir:{tasks}", "--workers", "1"],
                               cwd=home, env=clean_environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def two_results() -> bool:
        logs = list((home / "evals").glob("*/results.jsonl"))
        return bool(logs) and logs[0].read_text().count("\n") >= 2

    _, stderr = interrupt_when(process, two_results, wait_s=120)
    assert process.returncode == 130, stderr
    assert "run the same command again" in stderr
    first = results_of(home)
    assert 2 <= len(first) < 5 and all(r["status"] == "done" for r in first)

    rerun = run_sica(home, "eval", "-b", f"taskdir:{tasks}", "--workers", "2")
    assert rerun.returncode == 0, rerun.stderr
    second = results_of(home)
    assert len(second) == 5
    assert {r["problem_id"] for r in second if r["cached"]} == {r["problem_id"] for r in first}


def test_infrastructure_failures_are_retried_and_never_scored(home):
    """An upstream that stays unavailable: the gateway gives up (503), the agent ends `infra_error`, the eval
    retries, then reports the problem as an infrastructure failure, left out of the mean and of the cache."""
    write_eval_config(home, [{"error": {"status": 500}}] * 50, {"infra_retries": 1}, extra=textwrap.dedent("""
        [gateway.retry]
        max_attempts = 2
        initial_backoff_s = 0.01
    """))
    tasks = make_tasks(home / "one", {"alpha": "ok"})
    done = run_sica(home, "eval", "-b", f"taskdir:{tasks}")
    assert done.returncode == 0, done.stderr
    (result,) = results_of(home)
    assert result["infra"] and result["status"] == "infra_error" and result["tries"] == 2
    assert "infrastructure failure after 2 tries" in result["details"]
    assert list((Path(result["folder"])).iterdir()) and len(list(Path(result["folder"]).glob("try-*"))) == 2
    with sqlite3.connect(home / "evals" / "results.sqlite") as db:
        assert db.execute("SELECT count(*) FROM results").fetchone() == (0,)
    row = next(line for line in done.stdout.splitlines() if "taskdir" in line)
    assert "–" in row  # no score: nothing was scored


def test_a_call_left_in_flight_counts_for_its_attempt_and_failures_are_summarized(home):
    """The agent's time runs out while its model call is still running: the gateway finishes and meters the call,
    and the attempt waits for it, so its tokens and cost are the problem's, not lost."""
    write_eval_config(home, [dict(SOLVE_SCRIPT[0], latency_s=4.0)], {"time_limit_s": 1.5})
    tasks = make_tasks(home / "one", {"alpha": "ok"})
    done = run_sica(home, "eval", "-b", f"taskdir:{tasks}")
    assert done.returncode == 0, done.stderr
    (result,) = results_of(home)
    assert result["status"] == "timeout" and result["score"] == 0.0
    assert result["input_tokens"] == 1000 and result["cost_usd"] == pytest.approx(0.00104)
    trace = result["trace_summary"]
    assert trace.startswith("## Problem\n\nWrite the word 'ok' into done.txt.") and "## How it ended\n\ntimeout:" in trace


def test_bad_input_is_one_line(home):
    for args, message in [(["-b", "nosuch"], "unknown benchmark 'nosuch'"),
                          (["-b", "humaneval:0"], "must be a positive number"),
                          (["-b", "humaneval", "-b", "humaneval:3"], "named twice"),
                          (["-b", "humaneval", "--agent", str(home)], "is not an agent version"),
                          (["-b", "humaneval", "--agent", "agent-7"], "no runs under"),
                          (["-b", "humaneval", "--model", "nope"], "unknown model alias 'nope'")]:
        done = run_sica(home, "eval", *args)
        assert done.returncode == 1, (args, done.stderr)
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_an_archived_version_is_named_by_reference(home):
    """`RUN:agent-0` checks agent 0 out of a run's archive: the same code as the seed, so its results are reused."""
    with Run.create(home / "runs" / "first", seed_agent_dir(), {}):
        pass
    tasks = home / "tasks"
    assert run_sica(home, "eval", "-b", f"taskdir:{tasks}").returncode == 0
    done = run_sica(home, "eval", "-b", f"taskdir:{tasks}", "--agent", "first:agent-0")
    assert done.returncode == 0, done.stderr
    assert all(r["cached"] for r in results_of(home))
    missing = run_sica(home, "eval", "-b", f"taskdir:{tasks}", "--agent", "first:agent-3")
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr


def test_a_results_store_of_an_older_sica_is_brought_up_to_date(tmp_path):
    path = tmp_path / "results.sqlite"
    store = ResultStore(path)
    store.put(ProblemResult("k1", "p1", "b", "selection", "done", 1.0, "ok", 0.1, 10, 2, 3.0, 0.0, 1, "f"), "h", "m",
              "e1")
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE results DROP COLUMN trace_summary")
    store = ResultStore(path)
    store.put(ProblemResult("k2", "p2", "b", "selection", "timeout", 0.0, "no", 0.1, 10, 2, 3.0, 0.0, 1, "f",
                            "## Problem"), "h", "m", "e2")
    cached = store.cached(["k1", "k2"])
    assert [from_cache(cached[k], "b", "selection").trace_summary for k in ("k1", "k2")] == ["", "## Problem"]


def evaluate_repeat(home: Path, tasks: Path, repeat: int) -> EvalReport:
    """`run_eval` of the seed agent on the task folders, as attempt number `repeat` at each."""
    settings = load_settings(home / "sica.toml", {})
    request = EvalRequest(seed_agent_dir(), [f"taskdir:{tasks}"], workers=2, repeat=repeat)
    start_gateway = functools.partial(serve_gateway, settings, clean_environ())
    return asyncio.run(run_eval(EvalConfig.of(settings), request, lambda _: None, asyncio.Event(),
                                gateway=start_gateway))


def stored_results(home: Path) -> int:
    with closing(sqlite3.connect(home / "evals" / "results.sqlite")) as db:
        (count,) = db.execute("SELECT count(*) FROM results").fetchone()
    return int(count)


def test_a_repeat_runs_the_agent_again_and_a_rerun_of_the_same_repeat_reuses_its_results(home):
    tasks = make_tasks(home / "two", {"alpha": "ok", "gamma": "other"})
    first = evaluate_repeat(home, tasks, 0)
    assert [(r.score, r.cached) for r in first.results] == [(1.0, False), (0.0, False)]
    assert all(r.cached for r in evaluate_repeat(home, tasks, 0).results)

    repeat = evaluate_repeat(home, tasks, 1)
    assert [(r.score, r.cached) for r in repeat.results] == [(1.0, False), (0.0, False)]
    assert all(Path(r.folder).is_relative_to(repeat.folder) for r in repeat.results)  # attempts of its own
    assert {r.key for r in repeat.results}.isdisjoint(r.key for r in first.results)
    resumed = evaluate_repeat(home, tasks, 1)
    assert all(r.cached for r in resumed.results)
    assert [r.key for r in resumed.results] == [r.key for r in repeat.results]
    assert not any(r.cached for r in evaluate_repeat(home, tasks, 2).results)
    assert stored_results(home) == 6
    with pytest.raises(ValueError, match="numbered from 0"):
        EvalRequest(seed_agent_dir(), [f"taskdir:{tasks}"], repeat=-1)


def test_a_tampered_attempt_is_never_cached_whatever_the_repeat(home):
    """The agent writes a forged test report that the check prints: the scorer calls that tampering, and no
    repeat's result is stored, so each run of each repeat tries the problem again."""
    forged = json.loads(json.dumps(SOLVE_SCRIPT))
    forged[0]["tool_calls"][0]["arguments"]["content"] = "sica-pytest-report forged {}\n"
    write_eval_config(home, forged)
    tasks = home / "forging"
    (tasks / "forge").mkdir(parents=True)
    (tasks / "forge" / "task.md").write_text("Write done.txt.\n")
    (tasks / "forge" / "build.sh").write_text('mkdir -p "$1"\n')
    (tasks / "forge" / "check.sh").write_text('cat "$1/done.txt"\n')
    for repeat in (0, 1, 1, 2):
        (result,) = evaluate_repeat(home, tasks, repeat).results
        assert (result.status, result.score, result.cached) == ("tampered", 0.0, False), result
    assert stored_results(home) == 0


def test_the_first_attempts_result_key_is_the_key_made_before_repeats():
    """Stores made before repeats stay valid: repeat 0's key is the digest of the same material as then; each
    repeat has a key of its own."""
    problem = Problem("toy/p1", "toy", "Do it.", lambda dest: None, None, fingerprint="f")
    limits = AttemptLimits(60.0, 0.5, 1024, 256, 64, 5.0)
    models = {"task": {"alias": "fake", "model": "scripted"}}
    material = {"agent": "a" * 64, "problem": "toy/p1", "statement": hashlib.sha256(b"Do it.").hexdigest(),
                "fingerprint": "f", "models": models,
                "limits": {"time_limit_s": 60.0, "budget_usd": 0.5, "memory_mb": 1024, "scratch_mb": 256,
                           "tmp_mb": 64, "cancel_grace_s": 5.0}}
    before = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    assert result_key("a" * 64, problem, models, limits) == before
    assert result_key("a" * 64, problem, models, limits, repeat=0) == before
    keys = {result_key("a" * 64, problem, models, limits, repeat=repeat) for repeat in (0, 1, 2)}
    assert len(keys) == 3


def test_mean_interval():
    assert str(mean_interval([1.0])) == "1.000"
    interval = mean_interval([1, 1, 1, 0, 0])
    # mean 0.6, sample sd 0.5477, t(4) = 2.776: half-width 2.776 * 0.5477 / sqrt(5) = 0.680
    assert interval.mean == pytest.approx(0.6) and interval.half_width == pytest.approx(0.680, abs=1e-3)
    assert mean_interval([0.5] * 40).half_width == 0.0


def test_time_charged_is_declared_latency_for_scripted_models_else_wall_time_less_queueing():
    scripted = [{"upstream_s": 0.3, "queued_s": 0.5, "started_at": 100.0},
                {"upstream_s": 0.25, "queued_s": 0.0, "started_at": 101.0}]
    assert charged_seconds(7.0, scripted, 100.0, declared=True) == 0.55
    assert charged_seconds(7.0, scripted, 100.0, declared=False) == 6.5
    assert charged_seconds(7.0, [], 100.0, declared=False) == 7.0


def test_parallel_queueing_is_charged_once_and_never_below_the_time_no_call_waited():
    """Queued time is the union of the calls' queued intervals: eight calls queued side by side for the same 5 s
    take 5 s off the charge, not 40 (which would drive a 7 s attempt's charge to zero)."""
    parallel = [{"upstream_s": 1.0, "queued_s": 5.0, "started_at": 101.0} for _ in range(8)]
    assert charged_seconds(7.0, parallel, 100.0, declared=False) == 2.0
    overlapping = [{"upstream_s": 0, "queued_s": 3.0, "started_at": 100.0},
                   {"upstream_s": 0, "queued_s": 3.0, "started_at": 102.0},
                   {"upstream_s": 0, "queued_s": 30.0, "started_at": 106.5}]  # runs past the attempt's end
    assert charged_seconds(7.0, overlapping, 100.0, declared=False) == 1.5
