"""How the model calls tools, in the two calling modes, and the tolerant parser for text-mode replies.

Native mode: the provider's own tool-calling API (OpenAI `tools=` / Anthropic `tools=`); the calls come back
structured and only their argument JSON can be broken.

Text mode, for models whose native calls are unreliable (small local models write the call as a ```json block
in the text instead): the reply is ONE JSON object `{"thought": "why", "tool": "view", "arguments": {...}}`,
described in the system prompt by `text_protocol_instructions` and constrained on llama.cpp-style servers by
`text_reply_schema`. `parse_text_call` reads it leniently, because small models damage JSON in predictable
ways: code fences and prose around it, several calls in one reply, single quotes, Python literals, trailing
commas, raw newlines in strings, a lost closing brace, other key names.

Every `FormatError` message is read by the model, so it says exactly what was wrong and shows a concrete
correct reply, never a placeholder: small models copy placeholders literally and run them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sica_agent.tools.base import ToolSpec

TOOL_KEYS = ("tool", "name", "function", "action")
"""Keys accepted for the tool name in a text-mode reply, in order of preference."""

ARGUMENT_KEYS = ("arguments", "args", "parameters", "input")
"""Keys accepted for the arguments in a text-mode reply, in order of preference."""

HARMLESS_EXAMPLES = (
    {"thought": "Read the README to learn what the project is.", "tool": "view", "arguments": {"path": "README.md"}},
    {"thought": "List the files of the project.", "tool": "tree", "arguments": {}},
)
"""Example replies, preferred in this order when their tool exists: a model that copies one verbatim does no
harm. Other tool sets get an example built from their first tool's schema."""

_FALLBACK_THOUGHT = "Take the first step of the task."
_EXAMPLE_VALUES_BY_TYPE = {"string": "README.md", "integer": 1, "number": 1, "boolean": False}
_PYTHON_LITERALS = {"True": "true", "False": "false", "None": "null"}
_MAX_MISSING_BRACES = 2
_TRAILING_COMMA = re.compile(r",\s*[}\]]")
_WORD = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class ToolCall:
    """One call of a tool by the model. `id` ties the result to the call in native mode."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ParsedText:
    """A parsed text-mode reply: the call to run, how many further calls the reply held (only the first one
    runs, one call per turn; tell the model when this is not 0), and the model's stated reason."""

    call: ToolCall
    extra_calls_ignored: int = 0
    thought: str = ""


class FormatError(Exception):
    """The reply could not be read as a tool call. The message is meant for the model: what was wrong and
    what a correct reply looks like."""


# Native mode


def openai_tools(specs: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """The `tools=` list of an OpenAI-compatible chat completion."""
    return [
        {
            "type": "function",
            "function": {"name": spec.name, "description": spec.description, "parameters": spec.parameters},
        }
        for spec in specs
    ]


def anthropic_tools(specs: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """The `tools=` list of an Anthropic message."""
    return [{"name": spec.name, "description": spec.description, "input_schema": spec.parameters} for spec in specs]


def calls_from_openai_message(message: dict[str, Any]) -> list[ToolCall]:
    """The calls in an OpenAI assistant message, whose `function.arguments` are JSON text (repaired if
    slightly damaged; a dict is taken as is). Broken arguments raise FormatError naming the tool."""
    calls = []
    for index, raw_call in enumerate(message.get("tool_calls") or []):
        function = raw_call.get("function") or {}
        name = function.get("name") or ""
        arguments = _decoded_arguments(
            function.get("arguments"),
            f'The arguments of your call to "{name}" are not valid JSON',
            "Send them as one JSON object of parameter names and values, with double quotes around every key and "
            "string, and \\n for a line break inside a string.",
        )
        calls.append(ToolCall(raw_call.get("id") or f"call_{index}", name, _require_object(arguments, name)))
    return calls


def calls_from_anthropic_content(content: list[dict[str, Any]]) -> list[ToolCall]:
    """The calls in the content blocks of an Anthropic assistant message (its `tool_use` blocks)."""
    return [
        ToolCall(
            block.get("id") or f"call_{index}",
            block.get("name") or "",
            _require_object(block.get("input"), block.get("name") or ""),
        )
        for index, block in enumerate(content)
        if block.get("type") == "tool_use"
    ]


# Text mode: telling the model the protocol


def text_protocol_instructions(specs: Sequence[ToolSpec]) -> str:
    """The system-prompt section that describes the reply format and the tools. Deterministic (same specs,
    same bytes), so the prompt prefix stays cacheable across calls."""
    lines = [
        "# How to reply",
        'Reply with exactly one JSON object and nothing else, with the keys "thought" (one short sentence: why '
        'this step), "tool" (the name of one tool below) and "arguments" (an object of that tool\'s '
        "parameters). Call one tool per reply; its result comes back in the next message. For example:",
        example_reply(specs),
        "",
        "# Tools",
    ]
    for spec in specs:
        lines += ["", f"## {spec.name}", spec.description.strip(), "Parameters:"]
        properties = spec.parameters.get("properties") or {}
        required = set(spec.parameters.get("required") or ())
        for name, schema in properties.items():
            need = "required" if name in required else "optional"
            lines.append(f"- {name} ({_type_name(schema)}, {need}): {_describe_parameter(schema)}".rstrip())
        if not properties:
            lines.append("- none: give {} as the arguments")
    return "\n".join(lines)


def text_reply_schema(specs: Sequence[ToolSpec]) -> dict[str, Any]:
    """A JSON schema for a server-enforced `response_format`: one object whose `tool` is a known name."""
    return {
        "type": "object",
        "properties": {
            "thought": {"type": "string"},
            "tool": {"type": "string", "enum": [spec.name for spec in specs]},
            "arguments": {"type": "object"},
        },
        # `thought` is required so that schema-constrained servers generate it first: the model reasons, then acts.
        "required": ["thought", "tool", "arguments"],
        "additionalProperties": False,
    }


def example_reply(specs: Sequence[ToolSpec]) -> str:
    """A concrete correct reply to show the model: a harmless call when such a tool exists, else the first
    tool with a value of the right type for each required parameter."""
    names = {spec.name for spec in specs}
    for example in HARMLESS_EXAMPLES:
        if example["tool"] in names:
            return json.dumps(example)
    spec = specs[0]
    properties = spec.parameters.get("properties") or {}
    arguments = {name: _example_value(properties.get(name) or {}) for name in spec.parameters.get("required") or ()}
    return json.dumps({"thought": _FALLBACK_THOUGHT, "tool": spec.name, "arguments": arguments})


def _type_name(schema: dict[str, Any]) -> str:
    """A parameter's JSON type as shown to the model, e.g. `string` or `array of string`."""
    kind: str | list[str] = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array" and isinstance(schema.get("items"), dict) and "type" in schema["items"]:
        kind = f"array of {schema['items']['type']}"
    return kind


def _describe_parameter(schema: dict[str, Any]) -> str:
    """A parameter's description, plus its allowed values and default when the schema gives them."""
    text = (schema.get("description") or "").strip()
    if "enum" in schema:
        text += " One of: " + ", ".join(json.dumps(value) for value in schema["enum"]) + "."
    if "default" in schema:
        text += f" Default: {json.dumps(schema['default'])}."
    return text.strip()


def _example_value(schema: dict[str, Any]) -> Any:
    """A plausible value for a parameter in an example call."""
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return _EXAMPLE_VALUES_BY_TYPE.get(kind if isinstance(kind, str) else "string", "README.md")


# Text mode: reading the reply


def parse_text_call(
    text: str, tool_names: Collection[str], example: str | None = None, call_id: str = "call_0"
) -> ParsedText:
    """The first tool call in a text-mode reply, read leniently (see the module docstring).

    `example` is the correct reply quoted in error messages; by default one is built from `tool_names`.
    Raises FormatError when there is no JSON object with a tool key, the tool is unknown, or the arguments
    are not an object.
    """
    example = example or example_reply([ToolSpec(name, "", {}) for name in tool_names])
    calls, first_problem, saw_object = [], "", False
    start = text.find("{")
    while start != -1:
        scanned = _scan_object(text, start)
        decoded = None
        if scanned is None:
            first_problem = first_problem or (
                "The JSON object in your reply is not closed: it ends inside a string or lacks several closing "
                "braces. Keep the reply short enough to finish it."
            )
        else:
            try:
                decoded = _loads_lenient(scanned[0])
            except json.JSONDecodeError as error:
                first_problem = first_problem or (
                    f"The JSON object in your reply is not valid JSON: {_describe(error)}. Put double quotes "
                    'around every key and string, and write a double quote inside a string as \\".'
                )
        if isinstance(decoded, dict) and scanned is not None:  # decoded only from a scanned object
            saw_object = True
            if any(key in decoded for key in TOOL_KEYS):
                calls.append(decoded)
            start = text.find("{", scanned[1])
        else:
            start = text.find("{", start + 1)
    if not calls:
        if saw_object and not first_problem:
            first_problem = 'The JSON object in your reply has no "tool" key naming the tool to run.'
        problem = first_problem or "Your reply has no JSON object, so no tool was run."
        raise FormatError(f"{problem} {_correct_reply_hint(example)}")
    tool, arguments = _tool_and_arguments(calls[0])
    name = _known_tool_name(tool, tool_names, example)
    arguments = _decoded_arguments(
        arguments,
        f'The "arguments" of your call to "{name}" are a string that is not a valid JSON object',
        _correct_reply_hint(example),
    )
    thought = calls[0].get("thought")
    return ParsedText(
        ToolCall(call_id, name, _require_object(arguments, name, example)),
        len(calls) - 1,
        thought if isinstance(thought, str) else "",
    )


def _correct_reply_hint(example: str) -> str:
    """The closing sentence of every text-mode error: what a correct reply looks like."""
    return f"Reply with exactly one JSON object, for example:\n{example}"


def _tool_and_arguments(call: dict[str, Any]) -> tuple[Any, Any]:
    """The tool name and arguments of a call object, under whichever accepted keys the model used. Accepts
    the OpenAI-style nesting `{"function": {"name": "view", "arguments": {...}}}`; with no arguments key,
    the object's other keys (except "thought") are taken as the arguments."""
    tool_key = next(key for key in TOOL_KEYS if key in call)
    tool = call[tool_key]
    if isinstance(tool, dict) and any(key in tool for key in TOOL_KEYS):
        return _tool_and_arguments(tool)
    for key in ARGUMENT_KEYS:
        if key in call:
            return tool, call[key]
    return tool, {key: value for key, value in call.items() if key not in (tool_key, "thought")}


def _known_tool_name(tool: Any, tool_names: Collection[str], example: str) -> str:
    """The tool's name as registered (surrounding space and letter case forgiven), or FormatError."""
    if isinstance(tool, str):
        if tool.strip() in tool_names:
            return tool.strip()
        matches = [name for name in tool_names if name.lower() == tool.strip().lower()]
        if len(matches) == 1:
            return matches[0]
    available = ", ".join(sorted(tool_names))
    raise FormatError(
        f"There is no tool named {json.dumps(tool)}. The tools are: {available}. {_correct_reply_hint(example)}"
    )


def _decoded_arguments(arguments: Any, not_json: str, advice: str) -> Any:
    """A call's arguments as sent, or decoded when sent as JSON text (leniently; blank text is no arguments).
    Text that is not JSON raises FormatError: `not_json`, what is wrong with it, then `advice`."""
    if not isinstance(arguments, str):
        return arguments
    try:
        return _loads_lenient(arguments) if arguments.strip() else {}
    except json.JSONDecodeError as error:
        raise FormatError(f"{not_json}: {_describe(error)}. {advice}") from None


def _require_object(arguments: Any, tool: str, example: str | None = None) -> dict[str, Any]:
    """The arguments as a dict (missing ones as {}), or FormatError when they are another kind of value."""
    if arguments is None:
        return {}
    if isinstance(arguments, dict):
        return arguments
    hint = f" {_correct_reply_hint(example)}" if example else ""
    raise FormatError(
        f'The arguments of your call to "{tool}" are a {type(arguments).__name__}, not a JSON '
        f"object of parameter names and values.{hint}"
    )


def _describe(error: json.JSONDecodeError) -> str:
    """A JSON error as the model should read it: what and where."""
    return f"{error.msg} at line {error.lineno}, column {error.colno}"


def _scan_object(text: str, start: int) -> tuple[str, int] | None:
    """The object that opens at `text[start]` ("{") and the index just after it, found by counting braces
    outside strings (either quote kind). A backtick outside a string ends the object, as a closing code
    fence does; an object one or two closing braces short is completed. Anything more broken gives None."""
    depth, quote, index = 0, "", start
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start : index + 1], index + 1
        elif char == "`":
            break
        index += 1
    if quote or depth > _MAX_MISSING_BRACES:
        return None
    return text[start:index].rstrip() + "}" * depth, index


def _loads_lenient(text: str) -> Any:
    """`json.loads` (raw control characters such as newlines allowed in strings), retried on a repaired
    copy; raises the first attempt's error, whose position refers to the model's own text."""
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError as error:
        try:
            return json.loads(_repair_json(text), strict=False)
        except json.JSONDecodeError:
            raise error from None


def _repair_json(text: str) -> str:
    """Rewrite common near-JSON as JSON: single-quoted strings, Python's True/False/None, trailing commas,
    and the invalid escape \\'. Text inside strings is kept as written."""
    out, quote, index = [], "", 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\" and index + 1 < len(text):
                escaped = text[index + 1]
                out.append("'" if escaped == "'" else char + escaped)
                index += 2
                continue
            if char == quote:
                out.append('"')
                quote = ""
            else:
                out.append('\\"' if char == '"' else char)
        elif char in "\"'":
            out.append('"')
            quote = char
        elif char == "," and _TRAILING_COMMA.match(text, index):
            index += 1
            continue
        elif word := _WORD.match(text, index):
            out.append(_PYTHON_LITERALS.get(word.group(), word.group()))
            index = word.end()
            continue
        else:
            out.append(char)
        index += 1
    return "".join(out)
