"""The real 0.5B model as the overseer of a looping scripted agent, through the gateway: the agent (the seed,
its model the scripted alias `fake`) views one file again and again; the detectors bring a review forward, the
overseer's request goes through the gateway on its own account (a child of the attempt's), and the model's reply,
constrained by the judgement's JSON schema, parses strictly as a judgement recorded beside the agent's events."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from sica.overseer.judgement import Judgement
from tests.support.cli import run_sica
from tests.support.config import EVAL, scripted_config
from tests.support.evals import make_tasks, results_of

pytestmark = pytest.mark.slow

#: The seed agent viewing the same file, a step every half second, for up to two minutes.
LOOPING = [{"tool_calls": [{"name": "view", "arguments": {"path": "README"}}], "latency_s": 0.5,
            "usage": {"input": 100, "output": 10}}] * 240


def test_the_local_model_oversees_a_looping_agent(tmp_path: Path, local_model_alias: str):
    make_tasks(tmp_path / "tasks", {"write-done": "ok"})
    config = scripted_config(
        {"fake": {}}, eval={**EVAL, "infra_retries": 0, "time_limit_s": 150}, solve={"cancel_grace_s": 5},
        roles={"main": "fake", "overseer": "qwen"},
        overseer={"interval_s": 600, "poll_s": 0.2, "max_output_tokens": 200, "window_steps": 12},
    )
    (tmp_path / "sica.toml").write_text(config + local_model_alias)
    (tmp_path / "script.jsonl").write_text("".join(json.dumps(line) + "\n" for line in LOOPING))
    done = run_sica(tmp_path, "eval", "-b", f"taskdir:{tmp_path / 'tasks'}", "--workers", "1", timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = results_of(tmp_path)
    assert not result["infra"] and result["overseer"].startswith("overseer: "), result
    records = [json.loads(line) for line in (Path(result["folder"]) / "overseer.jsonl").read_text().splitlines()]
    kinds = [record["type"] for record in records]
    assert "finding" in kinds and kinds.index("finding") < kinds.index("judgement"), kinds
    for record in records:
        if record["type"] == "judgement":
            Judgement.model_validate(record["data"])
    (ledger,) = tmp_path.glob("evals/*/ledger.sqlite")
    with closing(sqlite3.connect(ledger)) as db:
        rows = db.execute(
            "SELECT a.name, p.name, c.status FROM calls c JOIN accounts a ON a.id = c.account_id"
            " JOIN accounts p ON p.id = a.parent_id WHERE c.alias = 'qwen'"
        ).fetchall()
    assert rows and all(name == f"overseer {parent}" and status == "ok" for name, parent, status in rows), rows
