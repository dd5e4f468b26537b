"""`sica solve` with the real 0.5B model: the run completes with parsed tool calls and a well-formed events
file (solving the task is a bonus, not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sica.events import STATUSES, Event
from tests.support.cli import run_sica

pytestmark = pytest.mark.slow


def test_solve_runs_to_completion_on_the_local_model(tmp_path: Path, local_model_alias):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "greet.py").write_text("def greet(name):\n    return 'Hello ' + name\n")
    (tmp_path / "sica.toml").write_text(local_model_alias + '\n[solve]\nsolves_dir = "solves"\ntime_limit_s = 60\n')
    done = run_sica(tmp_path, "solve", "Add an exclamation mark to the greeting in greet.py.", "--repo", str(repo),
                    timeout=240)
    assert done.returncode in (0, 3), done.stderr
    (folder,) = (tmp_path / "solves").iterdir()
    lines = (folder / "logdir" / "events.jsonl").read_text().splitlines()
    events = [Event.model_validate_json(line) for line in lines]  # every line is a valid v1 event
    assert events[0].type == "agent_start" and events[-1].type == "agent_end"
    assert events[-1].data["status"] in STATUSES
    assert any(e.type == "llm_call" and e.data["input_tokens"] > 0 for e in events)
    assert any(e.type == "tool_call" for e in events), "no tool call was parsed from the model's replies"
    outcome = json.loads((folder / "outcome.json").read_text())
    assert outcome["status"] == events[-1].data["status"] and outcome["input_tokens"] > 0
