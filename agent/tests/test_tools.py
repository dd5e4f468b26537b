"""The tool registry, argument checking in run_tool, and the tools that end a run."""

import re
from pathlib import Path
from typing import Any

import pytest

from sica_agent.tools import ALL_TOOLS, check_arguments, run_tool
from sica_agent.tools.base import ToolContext, ToolError, ToolResult, ToolSpec

PLACEHOLDER = re.compile(r"<[^>]*>|\{[^}]*\}|\bYOUR_|path/to", re.IGNORECASE)


@pytest.fixture
def context(tmp_path: Path) -> ToolContext:
    return ToolContext(tmp_path)


class EchoTool:
    """A test tool that returns its checked arguments, or fails the way its `mode` says."""

    spec = ToolSpec("echo", "Echo the arguments.", {
        "type": "object",
        "properties": {"text": {"type": "string"}, "count": {"type": "integer"}, "loud": {"type": "boolean"},
                       "mode": {"type": "string"}},
        "required": ["text"],
        "additionalProperties": False,
    })

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        if arguments.get("mode") == "refuse":
            raise ToolError("refused on purpose")
        if arguments.get("mode") == "crash":
            raise RuntimeError("bad state")
        return ToolResult(repr(sorted(arguments.items())))


def test_all_tools_are_registered_under_their_names():
    assert sorted(ALL_TOOLS) == sorted(
        ["view", "replace", "insert", "create", "undo", "run", "search", "tree", "submit", "complete"])
    for name, tool in ALL_TOOLS.items():
        assert tool.spec.name == name


@pytest.mark.parametrize("name", sorted(ALL_TOOLS))
def test_specs_are_closed_object_schemas_with_short_descriptions(name):
    spec = ALL_TOOLS[name].spec
    schema = spec.parameters
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["required"]) <= set(schema["properties"])
    for property_schema in schema["properties"].values():
        assert property_schema["type"] in ("string", "integer", "boolean") and property_schema["description"]
    assert 1 <= spec.description.count(". ") + 1 <= 2 and spec.description.endswith(".")


def test_valid_arguments_pass_and_unambiguous_slips_are_converted(context):
    assert check_arguments(EchoTool.spec, {"text": "hi", "count": 2, "loud": True}) == \
        {"text": "hi", "count": 2, "loud": True}
    assert check_arguments(EchoTool.spec, {"text": 42, "count": "12", "loud": "false", "mode": None}) == \
        {"text": "42", "count": 12, "loud": False}
    assert check_arguments(EchoTool.spec, {"text": "x", "count": 3.0}) == {"text": "x", "count": 3}


def test_argument_errors_name_the_argument_and_the_expected_type(context):
    def error(arguments: Any) -> str:
        result = run_tool(EchoTool(), arguments, context)
        assert not result.ok and not PLACEHOLDER.search(result.output), result.output
        return result.output

    assert "echo needs the argument 'text' (string)" in error({})
    assert "echo has no argument 'txt'" in error({"txt": "hi", "text": "hi"})
    assert "argument 'count' of echo must be an integer, not the string 'many'" in error({"text": "a", "count": "many"})
    assert "argument 'count' of echo must be an integer, not the boolean true" in error({"text": "a", "count": True})
    assert "argument 'loud' of echo must be a boolean, not the integer 1" in error({"text": "a", "loud": 1})
    assert "argument 'text' of echo must be a string, not a list" in error({"text": ["a"]})
    assert "must be a JSON object" in error(["text"])
    assert error({}).endswith("echo takes: text (string, required), count (integer), loud (boolean), mode (string)")


def test_every_problem_is_reported_at_once(context):
    output = run_tool(ALL_TOOLS["view"], {"file": "a.py", "start": "first"}, context).output
    assert "no argument 'file'" in output and "needs the argument 'path'" in output and "'start'" in output


def test_refusals_and_crashes_become_failed_results(context):
    assert run_tool(EchoTool(), {"text": "a", "mode": "refuse"}, context) == \
        ToolResult("refused on purpose", ok=False)
    assert run_tool(EchoTool(), {"text": "a", "mode": "crash"}, context) == \
        ToolResult("tool echo failed: RuntimeError: bad state", ok=False)


def test_submit_ends_the_run_with_the_answer(context):
    result = run_tool(ALL_TOOLS["submit"], {"answer": "src/app.py:12"}, context)
    assert result.final and result.ok and result.answer == "src/app.py:12"


def test_complete_ends_the_run_with_the_summary(context):
    result = run_tool(ALL_TOOLS["complete"], {"summary": "fixed the off-by-one; tests pass"}, context)
    assert result.final and result.ok and result.answer is None
    assert "fixed the off-by-one" in result.output
