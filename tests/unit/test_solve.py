"""`sica solve` end to end: the seed agent, driven by a scripted model through the real gateway, fixes a real
bug in a small git repository; the diff is taken safely, kept, printed and applied."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.cli import clean_environ, interrupt_when, run_sica
from tests.support.config import scripted_config, write_config

SCRIPT = [
    {"tool_calls": [{"name": "run", "arguments": {"command": "python -m pytest -q"}}], "usage": {"input": 900, "output": 30}},
    {"tool_calls": [{"name": "view", "arguments": {"path": "textstats/__init__.py"}}], "usage": {"input": 1200, "output": 20}},
    {"content": "mean divides by one too few.", "tool_calls": [{"name": "replace", "arguments": {
        "path": "textstats/__init__.py", "old": "(len(values) - 1)", "new": "len(values)"}}], "usage": {"input": 1400, "output": 40}},
    {"tool_calls": [{"name": "run", "arguments": {"command": "python -m pytest -q"}}], "usage": {"input": 1600, "output": 20}},
    {"tool_calls": [{"name": "complete", "arguments": {"summary": "mean now divides by len(values); tests pass"}}],
     "usage": {"input": 1700, "output": 30}},
]


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    (repo / "textstats").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "textstats" / "__init__.py").write_text(textwrap.dedent('''\
        """Small statistics over lists of numbers."""


        def mean(values):
            return sum(values) / (len(values) - 1)
    '''))
    (repo / "tests" / "test_mean.py").write_text(
        "from textstats import mean\n\n\ndef test_mean():\n    assert mean([2, 4, 6]) == 4\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "start"], check=True)
    return repo


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    write_config(tmp_path, scripted_config(solve={"solves_dir": "solves"}), {"script.jsonl": SCRIPT})
    return tmp_path, make_repo(tmp_path)


def sica(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_sica(cwd, *args)


def test_solve_fixes_the_bug_keeps_the_trace_and_applies_the_diff(setup):
    home, repo = setup
    done = sica(home, "solve", "The mean of [2, 4, 6] comes out wrong; fix it.", "--repo", str(repo),
                "--apply")
    assert done.returncode == 0, done.stderr
    assert "-    return sum(values) / (len(values) - 1)" in done.stdout
    assert "+    return sum(values) / len(values)" in done.stdout
    assert "done: task complete: mean now divides by len(values)" in done.stderr
    assert "applied the diff" in done.stderr
    assert "return sum(values) / len(values)" in (repo / "textstats" / "__init__.py").read_text()

    (folder,) = (home / "solves").iterdir()
    outcome = json.loads((folder / "outcome.json").read_text())
    # The cost is the gateway's: 6800 input tokens at $1/M and 140 output tokens at $2/M.
    assert (outcome["status"], outcome["input_tokens"], outcome["output_tokens"]) == ("done", 6800, 140)
    assert outcome["cost_usd"] == pytest.approx(0.00708)
    diff = (folder / "diff.patch").read_text()
    # One file, one line: running the tests left caches that stay out of the diff.
    assert diff.count("diff --git") == 1
    assert [line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")] == [
        "+    return sum(values) / len(values)"]
    events = [json.loads(line) for line in (folder / "logdir" / "events.jsonl").read_text().splitlines()]
    assert events[0]["type"] == "agent_start" and events[-1]["data"]["status"] == "done"
    test_runs = [e["data"]["output"] for e in events if e["type"] == "tool_result" and e["data"]["tool"] == "run"]
    assert "1 failed" in test_runs[0] and "1 passed" in test_runs[1]


def test_apply_is_refused_when_the_repository_changed_the_same_files(setup):
    home, repo = setup
    target = repo / "textstats" / "__init__.py"
    target.write_text(target.read_text() + "\n# local edit\n")
    done = sica(home, "solve", "Fix mean.", "--repo", str(repo), "--apply")
    assert done.returncode == 1
    assert "uncommitted changes to files the diff touches (textstats/__init__.py)" in " ".join(done.stderr.split())
    assert target.read_text().endswith("# local edit\n")


def test_the_agent_never_gets_provider_keys_or_the_harness_environment(setup, tmp_path):
    home, repo = setup
    script = [{"tool_calls": [{"name": "run", "arguments": {"command": "env | sort > seen-env.txt"}}]},
              {"tool_calls": [{"name": "complete", "arguments": {"summary": "looked"}}]}]
    (home / "script.jsonl").write_text("".join(json.dumps(line) + "\n" for line in script))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SICA_")}
    environ |= {"ANTHROPIC_API_KEY": "sk-ant-secret-value-123456", "HARNESS_ONLY": "x"}
    done = subprocess.run([sys.executable, "-m", "sica", "solve", "look", "--repo", str(repo)],
                          cwd=home, capture_output=True, text=True, timeout=300, env=environ)
    assert done.returncode == 0, done.stderr
    (folder,) = (home / "solves").iterdir()
    seen = (folder / "workdir" / "seen-env.txt").read_text()
    assert "sk-ant-secret" not in seen and "HARNESS_ONLY" not in seen
    assert "SICA_AGENT_TOKEN=sica-" in seen
    for path in folder.rglob("*"):
        if path.is_file():
            assert b"sk-ant-secret" not in path.read_bytes(), path


def test_unsafe_mode_runs_unconfined_with_a_warning(setup):
    home, repo = setup
    done = sica(home, "solve", "Fix mean.", "--repo", str(repo), "--sandbox", "none")
    assert done.returncode == 0, done.stderr
    assert "warning: --sandbox none: the agent runs without a sandbox" in done.stderr
    assert "+    return sum(values) / len(values)" in done.stdout


def test_the_agent_runs_as_the_unprivileged_sandbox_user_without_network(setup):
    home, repo = setup
    script = [{"tool_calls": [{"name": "run", "arguments": {
        "command": "id -u > who.txt; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' >> who.txt; "
                   "cat /root/.bashrc >> who.txt 2>&1 || true"}}]},
        {"tool_calls": [{"name": "complete", "arguments": {"summary": "looked"}}]}]
    (home / "script.jsonl").write_text("".join(json.dumps(line) + "\n" for line in script))
    done = sica(home, "solve", "look", "--repo", str(repo))
    assert done.returncode == 0, done.stderr
    (folder,) = (home / "solves").iterdir()
    seen = (folder / "workdir" / "who.txt").read_text().split()
    assert seen[:2] == (["65534", "lo"] if os.geteuid() == 0 else [str(os.geteuid()), "lo"])
    assert "No such file or directory" in " ".join(seen)


def test_ctrl_c_cancels_the_agent_through_its_inbox_and_keeps_its_work(setup):
    home, repo = setup
    edit = {"tool_calls": [{"name": "create", "arguments": {"path": "notes.txt", "content": "started\n"}}]}
    slow = {"tool_calls": [{"name": "run", "arguments": {"command": "true"}}], "latency_s": 0.5}
    (home / "script.jsonl").write_text("".join(json.dumps(line) + "\n" for line in [edit, *[slow] * 60]))
    process = subprocess.Popen([sys.executable, "-m", "sica", "solve", "Take notes.", "--repo", str(repo)],
                               cwd=home, env=clean_environ(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)

    def notes_taken() -> bool:
        live = list((home / "solves").glob("*/live.json"))
        return bool(live) and (Path(json.loads(live[0].read_text())["workdir"]) / "notes.txt").exists()

    stdout, stderr = interrupt_when(process, notes_taken, wait_s=60)
    assert process.returncode == 3, stderr
    assert "cancelled: cancelled (stopped by the user)" in stderr
    assert "+started" in stdout
    (folder,) = (home / "solves").iterdir()
    assert json.loads((folder / "outcome.json").read_text())["status"] == "cancelled"
    assert (folder / "diff.patch").read_text().count("notes.txt") >= 1


def test_a_spent_budget_ends_the_run_cleanly_as_budget_exceeded(setup):
    home, repo = setup
    config = home / "sica.toml"
    config.write_text(config.read_text().replace('solves_dir = "solves"', 'solves_dir = "solves"\nbudget_usd = 0.000001'))
    done = sica(home, "solve", "Fix mean.", "--repo", str(repo))
    assert done.returncode == 3
    assert "budget_exceeded: budget exceeded: account 'solve" in " ".join(done.stderr.split())


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed (make install installs it)")
def test_solve_in_a_podman_container(setup):
    home, repo = setup
    done = sica(home, "solve", "Fix mean.", "--repo", str(repo), "--sandbox", "podman")
    assert done.returncode == 0, done.stderr
    assert "+    return sum(values) / len(values)" in done.stdout
    (folder,) = (home / "solves").iterdir()
    events = [json.loads(line) for line in (folder / "logdir" / "events.jsonl").read_text().splitlines()]
    test_runs = [e["data"]["output"] for e in events if e["type"] == "tool_result" and e["data"]["tool"] == "run"]
    assert "1 failed" in test_runs[0] and "1 passed" in test_runs[1]


def test_a_failing_build_sh_is_one_clear_line(setup, tmp_path):
    home, _ = setup
    task = tmp_path / "task"
    task.mkdir()
    (task / "task.md").write_text("Do it.")
    (task / "build.sh").write_text("echo broken >&2; exit 4\n")
    (task / "check.sh").write_text("exit 0\n")
    done = sica(home, "solve", "--task-dir", str(task))
    assert done.returncode == 1
    assert "build.sh failed (exit 4): broken" in " ".join(done.stderr.split()) and "Traceback" not in done.stderr
