"""`sica eval` with the real 0.5B model on three easy task folders: every problem ends with a result the model
earned (tokens spent, a valid status, a sandboxed score), none as an infrastructure failure, and a rerun reuses
them all (solving them is a bonus, not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sica.events import STATUSES
from tests.support.cli import run_sica
from tests.unit.test_eval import results_of

pytestmark = pytest.mark.slow

#: name → (statement, starting files, check.sh)
EASY = {
    "write-ok": ("Create a file named done.txt containing just the word ok.", {},
                 'test "$(tr -d "[:space:]" < "$1/done.txt")" = ok'),
    "fix-typo": ("In greet.py, greet('Ada') should return 'Hello, Ada' but it returns 'Helo, Ada'. Fix it.",
                 {"greet.py": "def greet(name):\n    return 'Helo, ' + name\n"},
                 'cd "$1" && python3 -c "from greet import greet; assert greet(\'Ada\') == \'Hello, Ada\'"'),
    "add-function": ("Add a function add(a, b) returning a + b to calc.py.", {"calc.py": ""},
                     'cd "$1" && python3 -c "from calc import add; assert add(2, 3) == 5"'),
}


def write_easy_tasks(root: Path, names: list[str]) -> None:
    """These EASY problems as task folders under `root`."""
    for name in names:
        statement, files, check = EASY[name]
        task = root / name
        (task / "files").mkdir(parents=True)
        (task / "task.md").write_text(statement + "\n")
        for file, text in files.items():
            (task / "files" / file).write_text(text)
        (task / "build.sh").write_text('cp -r files/. "$1"\n')
        (task / "check.sh").write_text(check + "\n")


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
