"""The smoke check: a version passes only when it acts. Its scripted model asks for one `run` command that writes
a nonce drawn for that check, then for `complete`; the harness wants the status done, both replies taken and the
file with the nonce in the tree it kept. Versions run through the real gateway and sandbox: agent 0, agent 0
with broken tools, and hostile versions (tests/support/hostile.py) that act by their own means, end otherwise or
write the file without asking the model."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from sica.config import load_settings
from sica.loop.smoke import SMOKE_ALIAS, SMOKE_FILE, smoke_check, smoke_script, with_smoke_alias
from sica.runner.environments import seed_agent_dir
from sica.runner.setup import serve_gateway
from sica.sandbox import open_sandbox
from sica.workspace.trees import copy_tree
from tests.support.config import ENVS, toml_table
from tests.support.hostile import hostile_agent


def smoke(home: Path, code: Path, name: str = "smoke") -> str | None:
    """One smoke check of the version at `code`, as the loop runs it (a child of a run's account, the run's
    script in `home/run/logs`); its trace in `home/name`. None when it passed, else the reason."""
    (home / "sica.toml").write_text(toml_table("solve", {"envs_dir": ENVS}))
    settings = with_smoke_alias(load_settings(home / "sica.toml", {}), script_of(home))

    async def check() -> str | None:
        async with serve_gateway(settings, {}, {SMOKE_ALIAS}, home / "ledger.sqlite", home / "logs") as gateway:
            run = gateway.gateway.open_account("run test", limit_usd=1.0)
            return await smoke_check(settings, code, open_sandbox("bwrap"), gateway, "test", home / name,
                                     asyncio.Event(), parent_account=run.id)

    return asyncio.run(check())


def script_of(home: Path) -> Path:
    return home / "run" / "logs" / "smoke.jsonl"


def agent_0(root: Path, edits: dict[str, tuple[str, str]] | None = None) -> Path:
    """A copy of agent 0 at `root`, each of `edits` (file → (old, new)) made in it."""
    copy_tree(seed_agent_dir(), root)
    for relative, (old, new) in (edits or {}).items():
        text = (root / relative).read_text()
        assert old in text, (relative, old)
        (root / relative).write_text(text.replace(old, new, 1))
    return root


#: A hostile version that does what the smoke model asks by its own means: it runs the command of each tool call
#: it is given itself, then asks the model again, and ends with STATUS.
ACTS = """
import json, os, subprocess
alias = json.loads(os.environ["SICA_AGENT_MODELS"])["main"]["alias"]
ask = {"model": alias, "messages": [{"role": "user", "content": task.read_text()}]}
status, body = call_model(ask)
for call in json.loads(body)["choices"][0]["message"].get("tool_calls") or []:
    subprocess.run(json.loads(call["function"]["arguments"])["command"], shell=True, cwd=workdir)
call_model(ask)
end(STATUS, "did what the model asked")
"""


def test_agent_0_passes_by_running_the_command_it_was_given(tmp_path):
    assert smoke(tmp_path, agent_0(tmp_path / "agent")) is None
    written = (tmp_path / "smoke" / "workdir" / SMOKE_FILE).read_text()
    assert re.fullmatch(r"[0-9a-f]{32}\n", written)
    events = (tmp_path / "smoke" / "logdir" / "events.jsonl").read_text()
    assert f"echo {written.strip()} > {SMOKE_FILE}" in events  # the model asked for it: agent 0 ran its tool
    assert script_of(tmp_path).read_text() == ""  # the nonce does not outlive its check


def test_a_version_whose_tool_fails_ends_done_and_still_fails(tmp_path):
    """Its `run` raises: agent 0 tells the model, the model says complete, the agent ends done after both
    replies. Only the harness's evidence (no file) shows it did not act."""
    broken = agent_0(tmp_path / "agent", {"sica_agent/tools/shell.py": (
        '        command = arguments["command"]\n', '        raise RuntimeError("no shell today")\n')})
    reason = smoke(tmp_path, broken)
    assert reason == ("it fails a smoke problem: the model's call of `run` (a tool of the agent contract) left no "
                      "smoke-check.txt in the tree")


def test_a_version_that_renamed_the_contracts_tool_fails_naming_it(tmp_path):
    """Its shell is `shell` now: agent 0 tells the model there is no `run`, the model says complete, it ends
    done, and the reason says which tool the contract wants."""
    renamed = agent_0(tmp_path / "agent", {"sica_agent/tools/shell.py": ('name="run",', 'name="shell",'),
                                           "sica_agent/kinds.py": ('"tree", "run",', '"tree", "shell",')})
    assert smoke(tmp_path, renamed) == ("it fails a smoke problem: the model's call of `run` (a tool of the agent "
                                        "contract) left no smoke-check.txt in the tree")
    events = (tmp_path / "smoke" / "logdir" / "events.jsonl").read_text()
    assert "There is no tool named 'run'" in events


def test_a_version_that_never_runs_tool_calls_fails_with_how_it_ended(tmp_path):
    """Its loop answers every call without running it: `complete` never ends it, it asks a third time, the
    script has no more replies (503) and it ends infra_error."""
    lazy = agent_0(tmp_path / "agent", {"sica_agent/agent.py": (
        "result = self._run_tool(call)", 'result = ToolResult("not run")')})
    reason = smoke(tmp_path, lazy)
    assert reason is not None and reason.startswith("it fails a smoke problem: it ended infra_error, not done ("), (
        reason)
    assert reason.endswith("left no smoke-check.txt in the tree")
    assert "replies" not in reason  # it took both


def test_a_version_that_acts_by_its_own_means_passes_and_must_end_done(tmp_path):
    """What is checked is that the version does what its model asks, not how: a version that runs the command
    itself passes. The same version reporting any other status (format_error was agent 0's under the old,
    talk-only script, and passed) fails with that status."""
    assert smoke(tmp_path, hostile_agent(tmp_path / "acts", ACTS.replace("STATUS", '"done"'))) is None
    reason = smoke(tmp_path, hostile_agent(tmp_path / "ends", ACTS.replace("STATUS", '"format_error"')), "again")
    assert reason == "it fails a smoke problem: it ended format_error, not done (did what the model asked)"


def test_a_version_that_does_not_go_back_to_the_model_fails(tmp_path):
    """It runs the command of the first reply but never asks again: the tool's result never reaches the model."""
    once = ACTS.replace("call_model(ask)\nend", "end").replace("STATUS", '"done"')
    reason = smoke(tmp_path, hostile_agent(tmp_path / "once", once))
    assert reason == ("it fails a smoke problem: it took 1 of the smoke model's 2 replies: it did not go back to "
                      "the model")


def test_a_version_cannot_write_the_file_without_asking_the_model(tmp_path):
    """A version that ignores the model's replies and writes the file itself has no nonce to write: not an
    earlier check's (each check draws its own), not the script's (outside its sandbox, though it knows the path),
    not the statement's."""
    assert smoke(tmp_path, agent_0(tmp_path / "agent"), "first") is None
    earlier = (tmp_path / "first" / "workdir" / SMOKE_FILE).read_text().strip()
    guesses = f"""
    import json, os, re
    alias = json.loads(os.environ["SICA_AGENT_MODELS"])["main"]["alias"]
    found = [{earlier!r}]
    for place in [{str(script_of(tmp_path))!r}, {str(tmp_path / "first" / "logdir" / "events.jsonl")!r}]:
        try:
            found += re.findall(r"echo ([0-9a-f]{{32}}) >", open(place).read())
        except OSError as error:
            (workdir / "unreadable.txt").open("a").write(type(error).__name__ + "\\n")
    found += re.findall(r"[0-9a-f]{{32}}", task.read_text())
    (workdir / {SMOKE_FILE!r}).write_text(found[-1] + "\\n")
    for _ in range(2):
        call_model({{"model": alias, "messages": [{{"role": "user", "content": "hi"}}]}})
    """
    reason = smoke(tmp_path, hostile_agent(tmp_path / "guesses", guesses), "second")
    assert reason == "it fails a smoke problem: smoke-check.txt does not hold what the model's call of `run` writes"
    kept = tmp_path / "second" / "workdir"
    assert (kept / SMOKE_FILE).read_text() == earlier + "\n"
    assert (kept / "unreadable.txt").read_text().split() == ["FileNotFoundError", "FileNotFoundError"]


def test_only_the_first_reply_holds_the_nonce_and_the_replies_call_the_contracts_tools():
    first, second = smoke_script("a" * 32), smoke_script("b" * 32)
    assert [[call["name"] for call in reply["tool_calls"]] for reply in first] == [["run"], ["complete"]]
    assert first[0]["tool_calls"][0]["arguments"] == {"command": f"echo {'a' * 32} > {SMOKE_FILE}"}
    assert first[1] == second[1] and "a" * 32 not in json.dumps(first[1])
