"""One iteration of `sica improve` with the real 0.5B model as task and meta model, sandboxed: agent 0 is
evaluated, the meta agent's `improve` runs on a copy of its code, the result is archived (valid or invalid with
a reason, whatever the small model made of it) and, when valid, evaluated; every call is in the run's ledger and
none is left pending; `sica report` describes the run (what the model achieves is not asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sica.archive import Run
from tests.support.cli import run_sica
from tests.support.evals import write_easy_tasks

pytestmark = pytest.mark.slow


@pytest.mark.timeout(900)  # an evaluation, a meta step of 150 s, validation and the staged evaluation on 2 cores
def test_one_iteration_on_the_local_model(tmp_path: Path, local_model_alias):
    write_easy_tasks(tmp_path / "tasks", ["write-ok", "fix-typo"])
    (tmp_path / "sica.toml").write_text(local_model_alias + '\n[eval]\nresults_dir = "evals"\ntime_limit_s = 60\n'
                                        '\n[loop]\nmeta_time_limit_s = 150\nstages = [1]\n')
    done = run_sica(tmp_path, "improve", "-b", f"taskdir:{tmp_path / 'tasks'}", "--iterations", "1", "--model",
                    "qwen", "--run", "local", timeout=900)
    assert done.returncode == 0, done.stderr
    assert "iteration 1: agent-1 from agent-0 by agent-0" in done.stdout, done.stdout
    with Run.open(tmp_path / "runs" / "local", read_only=True) as run:
        assert [e.infra for e in run.evaluations(0)] == [False, False]
        version = run.version(1)
        assert version.parent == 0 and version.state in ("valid", "invalid")
        assert version.state == "valid" or version.invalid_reason
        if version.state == "valid":
            assert run.evaluations(1) and run.diff(1)
        (step,) = run.db.meta_steps()
        assert step.result_version == 1 and step.cost_usd == 0.0
        ledger = run.db._db
        assert ledger.execute("SELECT COUNT(*) FROM calls WHERE status = 'pending'").fetchone()[0] == 0
        meta_calls = ledger.execute("SELECT COUNT(*) FROM calls c JOIN accounts a ON a.id = c.account_id "
                                    "WHERE a.name LIKE 'meta/iteration-1%'").fetchone()[0]
        assert meta_calls > 0
