"""The agent's tools, by name, and `run_tool`, which checks a call's arguments and never lets a tool crash the run.

Arguments are checked against the tool's JSON schema by hand (required keys, no unknown keys, basic types) with
errors that name the argument and the expected type, because small models get argument names and types wrong
and need to be told exactly what to fix. Unambiguous slips are accepted and converted: a number written as a
string ("12"), a boolean as "true", a number given for a string, and `null` for an optional argument.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from sica_agent.tools.base import Tool, ToolContext, ToolError, ToolResult, ToolSpec
from sica_agent.tools.control import CompleteTool, SubmitTool
from sica_agent.tools.files import CreateTool, InsertTool, ReplaceTool, UndoTool, ViewTool
from sica_agent.tools.search import SearchTool
from sica_agent.tools.shell import RunTool
from sica_agent.tools.tree import TreeTool

ALL_TOOLS: Mapping[str, Tool] = MappingProxyType(
    {
        tool.spec.name: tool
        for tool in (
            ViewTool(),
            ReplaceTool(),
            InsertTool(),
            CreateTool(),
            UndoTool(),
            RunTool(),
            SearchTool(),
            TreeTool(),
            SubmitTool(),
            CompleteTool(),
        )
    }
)
"""Every built-in tool by name, read-only. The tools keep no state (the edit history lives in the context),
so one instance serves every agent."""

_INTEGER_TEXT = re.compile(r"[+-]?\d+")
_BOOLEAN_TEXT = {"true": True, "false": False}


def run_tool(tool: Tool, arguments: Any, context: ToolContext) -> ToolResult:
    """Run `tool` on checked `arguments`. A refusal (ToolError) or a crash becomes `ToolResult(ok=False)`."""
    name = tool.spec.name
    try:
        return tool.run(check_arguments(tool.spec, arguments), context)
    except ToolError as error:
        return ToolResult(str(error), ok=False)
    except Exception as error:
        return ToolResult(f"tool {name} failed: {type(error).__name__}: {error}", ok=False)


def check_arguments(spec: ToolSpec, arguments: Any) -> dict[str, Any]:
    """`arguments` checked against `spec.parameters` and converted where unambiguous; ToolError otherwise.

    Every problem is reported at once, so the model can fix them all in one retry.
    """
    if not isinstance(arguments, dict):
        raise ToolError(f"the arguments of {spec.name} must be a JSON object; {_signature(spec)}")
    properties = spec.parameters.get("properties", {})
    given = {key: value for key, value in arguments.items() if value is not None}
    problems = [f"{spec.name} has no argument '{key}'" for key in given if key not in properties]
    problems += [
        f"{spec.name} needs the argument '{key}' ({_type_of(properties[key])})"
        for key in spec.parameters.get("required", ())
        if key not in given
    ]
    checked = {}
    for key, value in given.items():
        if key in properties:
            try:
                checked[key] = _convert(value, _type_of(properties[key]))
            except ValueError:
                problems.append(
                    f"argument '{key}' of {spec.name} must be {_article(_type_of(properties[key]))}, "
                    f"not {_describe_value(value)}"
                )
    if problems:
        raise ToolError("; ".join(problems) + f". {_signature(spec)}")
    return checked


def _convert(value: Any, expected: str) -> Any:
    """`value` as the JSON type `expected`, or ValueError when it is not one and cannot safely become one."""
    if expected == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif expected == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
            return int(value)
    elif expected == "number":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            return float(value)
    elif expected == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _BOOLEAN_TEXT:
            return _BOOLEAN_TEXT[value.strip().lower()]
    elif expected == "array":
        if isinstance(value, list):
            return value
    elif expected == "object":
        if isinstance(value, dict):
            return value
    else:
        return value
    raise ValueError(expected)


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type", "any")
    return kind if isinstance(kind, str) else "any"


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _describe_value(value: Any) -> str:
    """How a wrong value is named in an error: its JSON type and a short excerpt."""
    kinds = {
        bool: "the boolean",
        int: "the integer",
        float: "the number",
        str: "the string",
        list: "a list",
        dict: "an object",
    }
    kind = kinds.get(type(value), type(value).__name__)
    if isinstance(value, (list, dict)):
        return kind
    return f"{kind} {repr(value[:60]) if isinstance(value, str) else json.dumps(value)}"


def _signature(spec: ToolSpec) -> str:
    """`view takes: path (string, required), start (integer), end (integer)`."""
    required = set(spec.parameters.get("required", ()))
    listed = [
        f"{key} ({_type_of(schema)}{', required' if key in required else ''})"
        for key, schema in spec.parameters.get("properties", {}).items()
    ]
    return f"{spec.name} takes: {', '.join(listed) or 'no arguments'}"
