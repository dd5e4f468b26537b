"""Ending the run: submit an answer, or declare the task complete."""

from __future__ import annotations

from typing import Any

from sica_agent.tools.base import ToolContext, ToolResult, ToolSpec


class SubmitTool:
    """End the run with an answer (for tasks that ask for a value, a location or a name)."""

    spec = ToolSpec(
        name="submit",
        description="Give your final answer and end the run. Use it only when the task asks for an answer, "
        "and only once you are sure of it.",
        parameters={
            "type": "object",
            "properties": {"answer": {"type": "string", "description": "The answer, exactly as the task wants it."}},
            "required": ["answer"],
            "additionalProperties": False,
        },
    )

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        return ToolResult("answer submitted.", final=True, answer=arguments["answer"])


class CompleteTool:
    """End the run because the task is done."""

    spec = ToolSpec(
        name="complete",
        description="Say that the task is done and end the run. Use it only after you have made and checked "
        "your changes.",
        parameters={
            "type": "object",
            "properties": {
                "summary": {"type": "string", "description": "What you changed and how you checked it, in a few lines."}
            },
            "required": ["summary"],
            "additionalProperties": False,
        },
    )

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        return ToolResult(f"task complete: {arguments['summary']}", final=True)
