"""`sica eval` with the real 0.5B model on three easy task folders: every problem ends with a result the model
earned (tokens spent, a valid status, a sandboxed score), none as an infrastructure failure, and a rerun reuses
them all (solving them is a bonus, not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sica.events import STATUSES
from tests.support.cli import run_sica
from tests.support.evals import EASY, results_of, write_easy_tasks

pytestmark = pytest.mark.slow

def test_eval_on_the_local_model(tmp_path: Path, local_model_alias):
    write_easy_tasks(tmp_path / "tasks", list(EASY))
    (tmp_path / "sica.toml").write_text(local_model_alias + '\n[eval]\nresults_dir = "evals"\ntime_limit_s = 90\n')
    done = run_sica(tmp_path, "eval", "-b", f"taskdir:{tmp_path / 'tasks'}", "--workers", "2", timeout=600)
    assert done.returncode == 0, done.stderr
    results = results_of(tmp_path)
    assert len(results) == 3
    for result in results:
        assert result["status"] in STATUSES and not result["infra"], result
        assert result["input_tokens"] > 0 and result["cost_usd"] == 0.0
        assert 0.0 <= result["score"] <= 1.0 and result["details"]
        events = (Path(result["folder"]) / "logdir" / "events.jsonl").read_text().splitlines()
        assert json.loads(events[-1])["type"] == "agent_end"
    rerun = run_sica(tmp_path, "eval", "-b", f"taskdir:{tmp_path / 'tasks'}", timeout=120)
    assert rerun.returncode == 0 and all(r["cached"] for r in results_of(tmp_path))
