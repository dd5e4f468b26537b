"""What defines a run's numbers (its mix, policy and the policy's parameters, stages, utility weights and caps) is
stored with the run: a resume with the same configuration goes on, one with other numbers is refused in one line
and changes nothing, `--switch-config` adopts the new numbers and records the switch (the report shows it), the
report computes utilities with the run's weights whatever sica.toml says, and a run made before records were
stored takes its record from its first resume. Run as a user would: `sica improve` and `sica report` processes
with scripted models."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from sica.archive import Run
from sica.config import LoopSettings, UtilitySettings
from sica.loop.run_numbers import RunNumbers
from sica.loop.run_state import RunState
from sica.runner.environments import seed_agent_dir
from tests.support.cli import run_sica
from tests.support.config import OK_SCRIPT, scripted_config, write_config, write_improve_config
from tests.support.evals import make_tasks
from tests.support.runs import Result, database_content

#: A meta step that changes the description: every iteration makes a version.
META_SCRIPT = [
    {"tool_calls": [{"name": "create", "arguments": {"path": "description.txt", "content": "agent 1\n"}}]},
    {"tool_calls": [{"name": "complete", "arguments": {"summary": "renamed"}}]},
]
DEFAULT_UTILITY = UtilitySettings().model_dump()


def make_run(home: Path, *args: str, loop_keys: dict[str, Any] | None = None) -> None:
    """Run `r1` on two tasks (one solved) for the iterations `args` ask, under a configuration with `loop_keys`."""
    make_tasks(home / "tasks", {"alpha": "ok", "beta": "other"})
    write_improve_config(home, META_SCRIPT, loop_keys=loop_keys)
    made = run_sica(home, "improve", "-b", f"taskdir:{home / 'tasks'}", "--model", "task", "--run", "r1", *args)
    assert made.returncode == 0, made.stderr


def stored(home: Path, key: str) -> Any:
    with Run.open(home / "runs" / "r1", read_only=True) as run:
        return run.db.get_state(key)


def test_a_run_stores_its_numbers_and_a_resume_with_other_ones_is_refused_leaving_the_run_as_it_was(tmp_path):
    make_run(tmp_path, "--policy", "greedy", "--iterations", "0")
    assert stored(tmp_path, "numbers") == {
        "record": {"benchmarks": [f"taskdir:{tmp_path / 'tasks'}"], "holdout": [], "policy": "greedy", "seed": 0,
                   "hgm_alpha": 0.6, "stages": [2], "staging": "sequential", "utility": DEFAULT_UTILITY},
        "changes": [],
    }
    problems = stored(tmp_path, "selection problems")
    assert [problem.rsplit("/", 1)[1] for problem in problems] == ["alpha", "beta"]

    # The same configuration goes on; it names no policy, so the run keeps the one it was made with.
    same = run_sica(tmp_path, "improve", "--resume", "r1", "--iterations", "0")
    assert same.returncode == 0 and "0 iterations this time" in same.stderr, same.stderr
    assert "numbers" not in same.stdout
    assert stored(tmp_path, "numbers")["changes"] == []

    for loop_keys, named in [
        ({"utility": {"score_weight": 0.8}, "seed": 3},
         ["loop.seed is 3 here, 0 in the run", "loop.utility.score_weight is 0.8 here, 0.5 in the run"]),
        ({"policy": "dgm"}, ['loop.policy is "dgm" here, "greedy" in the run']),
        ({"stages": [1, 2]}, ["loop.stages is [1, 2] here, [2] in the run"]),
    ]:
        write_improve_config(tmp_path, META_SCRIPT, loop_keys=loop_keys)
        before = database_content(tmp_path / "runs" / "r1")
        refused = run_sica(tmp_path, "improve", "--resume", "r1", "--iterations", "1")
        assert refused.returncode == 1, (loop_keys, refused.stdout, refused.stderr)
        (line,) = refused.stderr.strip().splitlines()
        assert line.startswith("error: run r1 was made with other numbers: "), line
        assert all(field in line for field in named), (named, line)
        assert line.endswith("put the run's values back in sica.toml, or adopt these from iteration 1 with "
                             "`sica improve --resume r1 --switch-config`"), line
        assert database_content(tmp_path / "runs" / "r1") == before
    assert stored(tmp_path, "iteration") == 0


def test_switch_config_adopts_the_new_numbers_records_the_switch_and_the_report_shows_it(tmp_path):
    make_run(tmp_path, "--iterations", "1")
    write_improve_config(tmp_path, META_SCRIPT, loop_keys={"utility": {"score_weight": 0.8}})
    started = time.time()
    switched = run_sica(tmp_path, "improve", "--resume", "r1", "--switch-config", "--iterations", "2")
    assert switched.returncode == 0, switched.stderr
    change_line = "the run's numbers changed at iteration 2: loop.utility.score_weight 0.5 → 0.8"
    assert switched.stdout.splitlines()[0] == change_line
    assert "iteration 2: agent-2" in switched.stdout
    numbers = stored(tmp_path, "numbers")
    assert numbers["record"]["utility"] == DEFAULT_UTILITY | {"score_weight": 0.8}
    (change,) = numbers["changes"]
    assert change["iteration"] == 2 and started <= change["at"] <= time.time()
    assert change["previous"]["utility"] == DEFAULT_UTILITY and change["current"] == numbers["record"]

    # The switched numbers are the run's now: the same configuration goes on, and says nothing more.
    again = run_sica(tmp_path, "improve", "--resume", "r1", "--iterations", "2")
    assert again.returncode == 0 and "numbers" not in again.stdout, again.stderr
    assert len(stored(tmp_path, "numbers")["changes"]) == 1

    reported = run_sica(tmp_path, "report", "r1")
    assert reported.returncode == 0, reported.stderr
    report = (tmp_path / "runs" / "r1" / "report.md").read_text()
    assert f"- Numbers changed: {change_line}\n" in report
    assert "- Utility weights: score 0.8, cost 0.25 (cap $10), time 0.25 (cap 300 s), × 0.5 on a time-out " \
           "(the run's)\n" in report

    alone = run_sica(tmp_path, "improve", "-b", f"taskdir:{tmp_path / 'tasks'}", "--switch-config")
    assert alone.returncode == 1 and "--switch-config changes a resumed run's numbers" in alone.stderr


def test_a_run_made_before_numbers_were_stored_takes_them_from_its_first_resume_and_says_so_once(tmp_path):
    make_run(tmp_path, "--iterations", "0")
    folder = tmp_path / "runs" / "r1"
    with sqlite3.connect(folder / "run.sqlite") as db:  # as a run made before stored numbers: no such keys
        db.execute("DELETE FROM run_state WHERE key IN ('numbers', 'selection problems')")
        config = json.loads(db.execute("SELECT value FROM run_state WHERE key = 'config'").fetchone()[0])
        db.execute("UPDATE run_state SET value = ? WHERE key = 'config'", (json.dumps(config | {"policy": "greedy"}),))
    db.close()
    write_improve_config(tmp_path, META_SCRIPT, loop_keys={"utility": {"score_weight": 0.8}})
    reported = run_sica(tmp_path, "report", "r1")
    assert reported.returncode == 0, reported.stderr
    assert "- Utility weights: score 0.8, cost 0.25 (cap $10), time 0.25 (cap 300 s), × 0.5 on a time-out (the " \
           "configuration's: the run predates stored weights)\n" in (folder / "report.md").read_text()

    first = run_sica(tmp_path, "improve", "--resume", "r1", "--iterations", "0")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "the run's numbers were first stored at iteration 1: the run predates stored numbers, so they were taken "
        "from that resume's configuration"]
    numbers = stored(tmp_path, "numbers")
    assert numbers["record"]["policy"] == "greedy"  # the policy it ran with, not the configuration's default
    assert numbers["record"]["utility"]["score_weight"] == 0.8
    assert [change["previous"] for change in numbers["changes"]] == [None]
    # The order it has always staged in: agent 0's selection problems by id.
    assert stored(tmp_path, "selection problems") is None
    with Run.open(folder, read_only=True) as run:
        assert RunState(run.db).selection_problems == sorted(e.problem_id for e in run.evaluations(0))

    second = run_sica(tmp_path, "improve", "--resume", "r1", "--iterations", "0")
    assert second.returncode == 0 and second.stdout == "", (second.stdout, second.stderr)


def test_the_report_computes_utilities_with_the_runs_weights_not_the_configurations(tmp_path):
    """The run's weights count the score only: agent 0 (scores 1 and 0) has utility 0.5. sica.toml's count the
    cost only, which would give it 0.999."""
    run_weights = UtilitySettings(score_weight=1.0, cost_weight=0.0, time_weight=0.0)
    numbers = RunNumbers.of(LoopSettings(utility=run_weights), ["toy:2"], [], "sica")
    with Run.create(tmp_path / "runs" / "r1", seed_agent_dir(), {"benchmarks": ["toy:2"]},
                    RunState.at_creation(numbers)) as run:
        run.record_evaluation(0, Result("toy/0", 1.0))
        run.record_evaluation(0, Result("toy/1", 0.0))
    weights = {"score_weight": 0.0, "cost_weight": 1.0, "time_weight": 0.0}
    write_config(tmp_path, scripted_config(loop={"utility": weights}), {"script.jsonl": OK_SCRIPT})
    reported = run_sica(tmp_path, "report", "r1")
    assert reported.returncode == 0, reported.stderr
    report = (tmp_path / "runs" / "r1" / "report.md").read_text()
    assert "| 0.500 | 0.0200 (0.0200 + 0.0000) |" in report
    assert "- Best version by selection utility: agent-0 (utility 0.500)\n" in report
    assert "- Utility weights: score 1, cost 0 (cap $10), time 0 (cap 300 s), × 0.5 on a time-out (the run's)\n" \
           in report
