"""Crash and resume: `sica improve` is SIGKILLed at chosen and at random points (in a meta step, between a version's
commit and its row, while evaluation results are recorded, at random times) and resumed after each kill; the
archive it ends with equals an uninterrupted run's: the same versions, parents, diffs, scores, costs and times
(scripted calls declare their usage and latency, and the policy's random state is stored with the run), with no
finished evaluation run twice and no ledger row left pending."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from sica.archive import Run
from tests.support.cli import clean_environ
from tests.support.config import write_improve_config
from tests.support.evals import make_tasks

CRASH = Path(__file__).parents[1] / "support" / "crash.py"
SOLVE = [
    {"tool_calls": [{"name": "create", "arguments": {"path": "done.txt", "content": "ok\n"}}],
     "usage": {"input": 1000, "output": 20}, "latency_s": 0.3},
    {"tool_calls": [{"name": "complete", "arguments": {"summary": "wrote done.txt"}}],
     "usage": {"input": 1100, "output": 10}, "latency_s": 0.2},
]
META = [
    {"tool_calls": [{"name": "run", "arguments": {"command": "echo '- one more note' >> CHANGELOG.md && "
                                                             "echo \"agent with $(wc -l < CHANGELOG.md) notes\" "
                                                             "> description.txt"}}],
     "usage": {"input": 3000, "output": 40}, "latency_s": 0.4},
    {"tool_calls": [{"name": "complete", "arguments": {"summary": "added a note"}}],
     "usage": {"input": 3100, "output": 10}, "latency_s": 0.2},
]
ITERATIONS = 3


def make_home(root: Path) -> Path:
    home = root / "home"
    home.mkdir(parents=True)
    make_tasks(home / "tasks", {"alpha": "ok", "beta": "ok", "gamma": "other", "delta": "ok"})
    write_improve_config(home, META, SOLVE)
    return home


def improve(home: Path, point: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    """One `sica improve` process (the first creates run r1, later ones resume it), killed at `point`."""
    if (home / "runs" / "r1").exists():
        args = ["--resume", "r1"]
    else:
        args = ["-b", f"taskdir:{home / 'tasks'}", "--model", "task", "--run", "r1", "--policy", "sica"]
    environ = clean_environ() | {"TMPDIR": str(tmp)}
    return subprocess.run([sys.executable, str(CRASH), point, "--", "improve", "--iterations", str(ITERATIONS),
                           *args], cwd=home, capture_output=True, text=True, timeout=600, env=environ)


def archive(home: Path) -> dict[str, object]:
    """Everything the two runs must agree on."""
    with Run.open(home / "runs" / "r1", read_only=True) as run:
        versions = run.versions()
        ledger = run.db._db
        pending = ledger.execute("SELECT COUNT(*) FROM calls WHERE status = 'pending'").fetchone()[0]
        return {
            "versions": [(v.number, v.parent, v.state, v.description, v.invalid_reason) for v in versions],
            "diffs": [run.diff(v.number) for v in versions],
            "evaluations": [[(e.problem_id.rsplit("/", 1)[1], e.part, e.status, e.score, e.cost_usd, e.seconds,
                              e.input_tokens, e.output_tokens) for e in run.evaluations(v.number)]
                            for v in versions],
            "meta steps": [(s.iteration, s.meta_version, s.base_version, s.state, round(s.cost_usd, 9),
                            s.result_version) for s in run.db.meta_steps() if s.state != "interrupted"],
            "iteration": run.db.get_state("iteration"),
            "pending ledger rows": pending,
        }


def finished_runs_per_result(home: Path) -> Counter[str]:
    """How many times each evaluation result was produced by running its problem (not taken from the cache)."""
    runs: Counter[str] = Counter()
    for log in (home / "evals").glob("*/results.jsonl"):
        for line in log.read_text().splitlines():
            result = json.loads(line)
            if not result["cached"] and not result["infra"]:
                runs[result["key"]] += 1
    return runs


@pytest.fixture
def scratch_tmp():
    """A temporary folder for the killed processes, reachable by the sandbox user; the tmpfs scratch areas a
    SIGKILL leaves mounted there are unmounted afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="sica-crash-test-"))
    folder.chmod(0o755)
    yield folder
    for area in folder.glob("sica-run-*"):
        subprocess.run(["umount", "-l", str(area)], capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_a_run_killed_many_times_ends_as_an_uninterrupted_one(tmp_path, scratch_tmp):
    plain = make_home(tmp_path / "plain")
    done = improve(plain, "none", scratch_tmp)
    assert done.returncode == 0, done.stderr
    expected = archive(plain)
    assert expected["iteration"] == ITERATIONS and expected["pending ledger rows"] == 0
    assert len(expected["versions"]) == ITERATIONS + 1

    seed = int.from_bytes(os.urandom(2), "big")
    chance = random.Random(seed)
    points = ["record:2", "meta", "tag", "record:5", "tag"] + [f"after:{chance.uniform(2, 14):.1f}" for _ in range(4)]
    crashed = make_home(tmp_path / "crashed")
    kills = 0
    for point in points:
        process = improve(crashed, point, scratch_tmp)
        if process.returncode == -9:
            kills += 1
        else:
            assert process.returncode == 0, (point, seed, process.stderr)
    while (final := improve(crashed, "none", scratch_tmp)).returncode == 0 and "0 iterations" not in final.stderr:
        pass
    assert final.returncode == 0, final.stderr
    assert kills >= 5, f"only {kills} kills landed (seed {seed})"
    assert archive(crashed) == expected, f"seed {seed}, points {points}"
    runs = finished_runs_per_result(crashed)
    assert runs and set(runs.values()) == {1}, f"results run more than once (seed {seed}): {runs}"
