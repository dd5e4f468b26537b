"""A meta step as one attempt: the seed's `improve`, driven by a scripted model through the real gateway and the
real bwrap sandbox, edits a copy of an agent's code with the archive view mounted read-only."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from sica.benchmarks.base import Problem
from sica.runner.attempt import AttemptLimits, run_attempt
from sica.runner.environments import seed_agent_dir
from sica.runner.setup import prepared_agent, serve_gateway
from sica.sandbox import open_sandbox
from sica.workspace.trees import copy_tree
from tests.support.config import ENVS, jsonl, scripted_config


def test_improve_edits_the_copy_and_cannot_touch_the_archive(make_settings, tmp_path):
    with tempfile.TemporaryDirectory(prefix="sica-archive-view-") as view:
        archive = Path(view)
        archive.chmod(0o755)
        (archive / "versions.md").write_text("agent 0: score 0.4\n")
        (archive / "versions.md").chmod(0o644)
        script = [
            {"tool_calls": [{"name": "run", "arguments": {
                "command": f"cat {archive}/versions.md; touch {archive}/planted; echo touch-exit=$?"}}]},
            {"tool_calls": [{"name": "create", "arguments": {
                "path": "description.txt", "content": "agent 1: asks the reasoner before editing\n"}}]},
            {"tool_calls": [{"name": "complete", "arguments": {"summary": "one focused change"}}]},
        ]
        settings = make_settings(scripted_config({"fake": {"price": "free"}}, solve={"envs_dir": ENVS}),
                                 scripts={"script.jsonl": jsonl(script)})
        base = Problem("meta/1", "meta", "", lambda dest: copy_tree(seed_agent_dir(), dest), None)

        async def meta_step():
            async with prepared_agent(settings.model_roles, settings.solve.envs_dir, seed_agent_dir(), None) as agent:
                async with serve_gateway(settings, {}, agent.aliases, tmp_path / "ledger.sqlite", tmp_path) as gateway:
                    return await run_attempt(base, agent, AttemptLimits.for_solve(settings.solve),
                                             open_sandbox("bwrap"), gateway, "run-1", tmp_path / "meta",
                                             lambda progress: None, asyncio.Event(), archive=archive)

        outcome = asyncio.run(meta_step())
        assert (outcome.status, outcome.summary) == ("done", "task complete: one focused change")
        assert "+agent 1: asks the reasoner before editing" in outcome.diff
        assert (tmp_path / "meta" / "workdir" / "sica_agent" / "__main__.py").is_file()
        assert (tmp_path / "meta" / "workdir" / "description.txt").read_text().startswith("agent 1")
        events = (tmp_path / "meta" / "logdir" / "events.jsonl").read_text()
        assert "agent 0: score 0.4" in events and "touch-exit=1" in events  # read, but not written
        assert sorted(p.name for p in archive.iterdir()) == ["versions.md"]
