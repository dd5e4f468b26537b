"""Sub-agents as tools: the caller gives a self-contained task, a child agent works on it with its own
history and limits, and its typed result comes back as the tool's output."""

from __future__ import annotations

from typing import Any

from sica_agent.agent import Agent, AgentKind, RunEnded, Runtime, ask_model
from sica_agent.llm import ModelCallError
from sica_agent.tools.base import ToolContext, ToolResult, ToolSpec

_TASK_PARAMETERS = {
    "type": "object",
    "properties": {
        "task": {
            "type": "string",
            "description": "The whole task, self-contained: the child sees nothing of your conversation.",
        }
    },
    "required": ["task"],
    "additionalProperties": False,
}


class SubAgentTool:
    """Runs a child agent of `kind` on the task it is given; a cancelled child returns what it has."""

    def __init__(
        self, kind: AgentKind, description: str, runtime: Runtime, context: ToolContext, lineage: list[str]
    ) -> None:
        self.spec = ToolSpec(kind.name, description, _TASK_PARAMETERS)
        self._kind = kind
        self._runtime = runtime
        self._context = context
        self._lineage = lineage

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        child = Agent(self._kind, self._runtime, self._context, arguments["task"], self._lineage)
        result = child.run()
        answer = f"\nAnswer: {result.answer}" if result.answer else ""
        return ToolResult(
            f"{self._kind.name} ended with status {result.status} after {result.steps} steps.\n"
            f"{result.summary}{answer}",
            ok=result.status == "done",
        )


class ReasonerTool:
    """One call to the reasoning model on a self-contained question; no tools, no history."""

    spec = ToolSpec(
        "reasoner",
        "Ask a stronger reasoning model one self-contained question (include all the code "
        "and facts it needs) and get its answer. Use it for hard design or debugging questions.",
        {
            "type": "object",
            "properties": {"question": {"type": "string"}},
            "required": ["question"],
            "additionalProperties": False,
        },
    )

    def __init__(self, runtime: Runtime, lineage: list[str]) -> None:
        self._runtime = runtime
        self._lineage = lineage

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        agent_id = self._runtime.new_agent_id("reasoner")
        role = self._runtime.settings.model("reasoning")

        def emit(event_type: str, **data: Any) -> None:
            self._runtime.events.emit(agent_id, self._lineage[0], event_type, **data)

        emit("agent_start", kind="reasoner", task=arguments["question"], model=role.alias)
        try:
            reply = ask_model(
                self._runtime,
                emit,
                role,
                "Answer the question precisely and concisely.",
                [{"role": "user", "content": arguments["question"]}],
                max_tokens=2048,
                temperature=0.2,
            )
        except RunEnded as ended:
            emit("agent_end", status=ended.status, summary=ended.reason, steps=0)
            raise
        except ModelCallError as error:
            emit("agent_end", status="error", summary=str(error), steps=0)
            return ToolResult(f"the reasoner failed: {error}", ok=False)
        emit("agent_end", status="done", summary=reply.text[:2000], steps=1)
        return ToolResult(reply.text)
