"""`sica overseer` as a real process beside an attempt's folder: it reviews a looping agent with the scripted
overseer model, prints its judgement, notifies the agent through its inbox and records it all."""

from __future__ import annotations

import json

from sica.gateway.accounts import Account
from sica.gateway.ledger import Ledger
from sica.overseer.record import read_record
from tests.support.cli import run_sica
from tests.support.config import scripted_config, write_config
from tests.unit.test_overseer_follow import AgentLog
from tests.unit.test_overseer_loop import LOOPING, looping


def test_sica_overseer_reviews_a_running_attempt(tmp_path):
    write_config(tmp_path, scripted_config({"judge": {}}, roles={"overseer": "judge"}),
                 {"script.jsonl": [{"content": json.dumps(LOOPING)}]})
    folder = tmp_path / "attempt"
    folder.mkdir()
    log = AgentLog(folder / "logdir")
    (folder / "workdir").mkdir()
    (folder / "live.json").write_text(json.dumps({"logdir": str(folder / "logdir"),
                                                  "workdir": str(folder / "workdir")}))
    ledger = Ledger(folder / "ledger.sqlite")
    ledger.add_account(Account("attempt-id", "p1 run1", None, limit_nano=10**9, aliases=frozenset({"judge"})), None)
    ledger.close()
    looping(log)
    log.emit("agent_end", status="done", summary="gave up")  # so the overseer ends after its first look
    done = run_sica(tmp_path, "overseer", "--logdir", str(folder), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "finding  repeated_action_observation [main]" in done.stdout
    assert "review   looping agent=main cancel=none notify='Stop viewing agent.py; edit it.'" in done.stdout
    [notice] = (folder / "logdir" / "inbox").glob("*.json")
    assert json.loads(notice.read_text())["type"] == "notify"
    assert [r["type"] for r in read_record(folder / "overseer.jsonl")] == ["finding", "judgement", "action"]
    ledger = Ledger(folder / "ledger.sqlite")
    [call] = [row for row in ledger.calls() if row["status"] == "ok"]
    parent = ledger._db.execute("SELECT parent_id FROM accounts WHERE id = ?", (call["account_id"],)).fetchone()[0]
    ledger.close()
    assert parent == "attempt-id"  # the overseer's account is a child of the attempt's
