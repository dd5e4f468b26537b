"""Entry points of the contract: `solve` works on a task in a workdir, `improve` makes a better agent."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from sica_agent.agent import Agent, AgentKind, AgentResult, RunEnded, Runtime
from sica_agent.events import EventLog
from sica_agent.inbox import Inbox
from sica_agent.kinds import ARCHIVE_EXPLORER, DEVELOPER, IMPROVER, SOLVER
from sica_agent.llm import ModelClient, gateway_client
from sica_agent.settings import Settings
from sica_agent.subagents import ReasonerTool, SubAgentTool
from sica_agent.tools import ALL_TOOLS, run_tool
from sica_agent.tools.base import Tool, ToolContext

MAX_FILES_SHOWN = 3
_DEVELOPER_HELP = (
    "Give a self-contained coding task to a software developer, who edits and tests code in the "
    "working directory with its own tools and reports back what it did."
)
_EXPLORER_HELP = (
    "Ask a question about the archive of earlier agent versions (their scores, failures and "
    "changes); an explorer reads it and answers."
)


def _shared(tool: Tool) -> Callable[[Runtime, ToolContext, list[str]], Tool]:
    """A factory for a tool that keeps no state of its own, so every agent can use the same instance."""
    return lambda runtime, context, lineage: tool


def build_runtime(settings: Settings, logdir: Path, archive: Path | None = None) -> Runtime:
    """Everything the agents of one run share, with the factories of every tool they may use."""
    http = gateway_client(settings.gateway, settings.token, timeout_s=900)
    factories = {name: _shared(tool) for name, tool in ALL_TOOLS.items()}
    factories["software_developer"] = lambda runtime, context, lineage: SubAgentTool(
        DEVELOPER, _DEVELOPER_HELP, runtime, context, lineage
    )
    factories["reasoner"] = lambda runtime, context, lineage: ReasonerTool(runtime, lineage)
    if archive is not None:
        archive_context = ToolContext(archive)
        factories["archive_explorer"] = lambda runtime, context, lineage: SubAgentTool(
            ARCHIVE_EXPLORER, _EXPLORER_HELP, runtime, archive_context, lineage
        )
    return Runtime(
        settings=settings,
        model=ModelClient(http),
        events=EventLog(logdir / "events.jsonl", settings.run_id, settings.problem_id),
        inbox=Inbox(logdir / "inbox"),
        deadline=time.monotonic() + settings.time_limit_s,
        tool_factories=factories,
    )


def overview(context: ToolContext, task: str = "") -> str:
    """The real file tree, and the files the task names, shown in the first prompt: small models that must
    look for files themselves often guess paths or never read the code."""
    tree: Tool = ALL_TOOLS["tree"]
    parts = [f"Working directory: {context.workdir}\nFiles:\n{run_tool(tree, {'depth': 2}, context).output}"]
    named = [
        word
        for word in dict.fromkeys(re.findall(r"[\w./-]+\.\w+", task))
        if (context.workdir / word).is_file() and not word.startswith(("/", ".."))
    ]
    for path in named[:MAX_FILES_SHOWN]:
        shown = run_tool(ALL_TOOLS["view"], {"path": path}, context)
        if shown.ok:
            parts.append(f"Contents of {path}:\n{shown.output}")
    return "\n\n".join(parts)


def run_top_agent(kind: AgentKind, runtime: Runtime, context: ToolContext, task: str) -> AgentResult:
    """Run the top agent; a run-ending condition (budget, infrastructure) becomes its result."""
    try:
        return Agent(kind, runtime, context, task).run()
    except RunEnded as ended:
        return AgentResult(ended.status, ended.reason)
    finally:
        runtime.events.close()


def solve(settings: Settings, task_file: Path, workdir: Path, logdir: Path) -> AgentResult:
    context = ToolContext(workdir.resolve())
    statement = task_file.read_text(encoding="utf-8").strip()
    task = f"{statement}\n\n{overview(context, statement)}"
    result = run_top_agent(SOLVER, build_runtime(settings, logdir), context, task)
    if result.answer is not None:
        (logdir / "answer.txt").write_text(result.answer, encoding="utf-8")
    return result


def improve(settings: Settings, workdir: Path, archive: Path, logdir: Path) -> AgentResult:
    context = ToolContext(workdir.resolve())
    task = (
        f"Improve this coding agent. The archive of earlier versions is available to the archive_explorer."
        f"\n\n{overview(context)}"
    )
    return run_top_agent(IMPROVER, build_runtime(settings, logdir, archive.resolve()), context, task)
