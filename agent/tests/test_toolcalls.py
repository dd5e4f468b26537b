"""Tests of toolcalls: the native formats, the text protocol, and the tolerant text parser."""

import json

import pytest

from sica_agent.toolcalls import (
    FormatError,
    ToolCall,
    anthropic_tools,
    calls_from_anthropic_content,
    calls_from_openai_message,
    example_reply,
    openai_tools,
    parse_text_call,
    text_protocol_instructions,
    text_reply_schema,
)
from sica_agent.tools.base import ToolSpec

VIEW = ToolSpec("view", "Show a file with line numbers.", {
    "type": "object",
    "properties": {"path": {"type": "string", "description": "File to show, relative to the workdir."},
                   "start_line": {"type": "integer", "description": "First line to show.", "default": 1}},
    "required": ["path"],
})
BASH = ToolSpec("bash", "Run a shell command in the workdir.", {
    "type": "object",
    "properties": {"command": {"type": "string", "description": "The command line."}},
    "required": ["command"],
})
COMPLETE = ToolSpec("complete", "Finish the task.", {"type": "object", "properties": {}})
SPECS = [VIEW, BASH, COMPLETE]
NAMES = [spec.name for spec in SPECS]
VIEW_README = ToolCall("call_0", "view", {"path": "README.md"})


def parse(text):
    return parse_text_call(text, NAMES)


@pytest.mark.parametrize("text", [
    '{"thought": "look", "tool": "view", "arguments": {"path": "README.md"}}',
    '```json\n{"tool": "view", "arguments": {"path": "README.md"}}\n```',
    '```\n{"tool": "view", "arguments": {"path": "README.md"}}\n```',
    'I will read the README first.\n```json\n{"tool": "view", "arguments": {"path": "README.md"}}\n```\n'
    "Then I'll fix it.",
    'Sure! {"tool": "view", "arguments": {"path": "README.md"}} Hope that helps.',
    'Set {a, b} is not JSON. {"tool": "view", "arguments": {"path": "README.md"}}',
    '<tool_call>\n{"name": "view", "arguments": {"path": "README.md"}}\n</tool_call>',
], ids=["bare", "json-fence", "plain-fence", "fence-with-prose", "inline-prose", "prose-braces", "qwen-tags"])
def test_finds_the_call_around_prose_and_fences(text):
    parsed = parse(text)
    assert parsed.call == VIEW_README
    assert parsed.extra_calls_ignored == 0


@pytest.mark.parametrize("text", [
    '{"tool": "view", "arguments": {"path": "README.md",},}',
    "{'tool': 'view', 'arguments': {'path': 'README.md'}}",
    '{"tool": "view", "arguments": {"path": "README.md"}',
    '{"tool": "view", "arguments": {"path": "README.md"',
    '```json\n{"tool": "view", "arguments": {"path": "README.md"}\n```',
    '{"tool": "view", \'arguments\': {"path": \'README.md\',}',
], ids=["trailing-commas", "single-quotes", "one-brace-missing", "two-braces-missing", "brace-missing-in-fence",
        "mixed-damage"])
def test_repairs_minor_damage(text):
    assert parse(text).call == VIEW_README


@pytest.mark.parametrize("text, arguments", [
    ('{"tool": "view", "arguments": {"path": "a.py", "numbers": True, "end": None, "wrap": False}}',
     {"path": "a.py", "numbers": True, "end": None, "wrap": False}),
    ('{"tool": "bash", "arguments": {"command": "printf \'a\nb\'"}}', {"command": "printf 'a\nb'"}),
    ('{"tool": "bash", "arguments": {"command": "cat <<EOF\nline one\n\tline two\nEOF"}}',
     {"command": "cat <<EOF\nline one\n\tline two\nEOF"}),
    ("{'tool': 'bash', 'arguments': {'command': 'echo \"it\\'s }\"'}}", {"command": "echo \"it's }\""}),
    ('{"tool": "bash", "arguments": {"command": "echo True, None"}}', {"command": "echo True, None"}),
    ('{"tool": "bash", "arguments": {"command": "echo \'{\' ,}"}}', {"command": "echo '{' ,}"}),
], ids=["python-literals", "raw-newline", "raw-newline-and-tab", "single-quoted-with-escapes",
        "literals-inside-strings-kept", "braces-and-commas-inside-strings-kept"])
def test_repairs_keep_string_contents(text, arguments):
    call = parse(text).call
    assert call.arguments == arguments


@pytest.mark.parametrize("tool_key", ["tool", "name", "function", "action"])
@pytest.mark.parametrize("arguments_key", ["arguments", "args", "parameters", "input"])
def test_accepts_alternative_keys(tool_key, arguments_key):
    text = json.dumps({tool_key: "view", arguments_key: {"path": "README.md"}})
    assert parse(text).call == VIEW_README


@pytest.mark.parametrize("text", [
    '{"tool": "view", "arguments": "{\\"path\\": \\"README.md\\"}"}',
    '{"tool": "view", "arguments": "{\'path\': \'README.md\'}"}',
    '{"function": {"name": "view", "arguments": {"path": "README.md"}}}',
    '{"type": "function", "function": {"name": "view", "arguments": "{\\"path\\": \\"README.md\\"}"}}',
    '{"tool": "view", "path": "README.md"}',
    '{"tool": " View ", "arguments": {"path": "README.md"}}',
], ids=["string-arguments", "string-arguments-single-quotes", "openai-nesting", "openai-nesting-string",
        "flat-arguments", "name-case-and-space"])
def test_accepts_other_shapes(text):
    assert parse(text).call == VIEW_README


def test_missing_or_null_arguments_are_empty():
    assert parse('{"tool": "complete"}').call.arguments == {}
    assert parse('{"tool": "complete", "arguments": null}').call.arguments == {}
    assert parse('{"tool": "complete", "arguments": ""}').call.arguments == {}


def test_thought_and_call_id():
    parsed = parse_text_call('{"thought": "Check it.", "tool": "complete", "arguments": {}}', NAMES, call_id="c7")
    assert parsed.thought == "Check it."
    assert parsed.call.id == "c7"


def test_runs_only_the_first_of_several_calls():
    text = "\n".join(json.dumps({"tool": "bash", "arguments": {"command": f"echo {n}"}}) for n in range(5))
    parsed = parse(text)
    assert parsed.call.arguments == {"command": "echo 0"}
    assert parsed.extra_calls_ignored == 4


def test_separate_fences_each_count_as_a_call():
    text = ('First:\n```json\n{"tool": "view", "arguments": {"path": "README.md"}}\n```\n'
            'Then:\n```json\n{"tool": "bash", "arguments": {"command": "ls"}}\n```')
    parsed = parse(text)
    assert parsed.call == VIEW_README
    assert parsed.extra_calls_ignored == 1


def test_non_call_objects_are_not_counted():
    parsed = parse('{"tool": "view", "arguments": {"path": "README.md"}}\nThe result will be {"lines": 3}.')
    assert parsed.extra_calls_ignored == 0


@pytest.mark.parametrize("text, expected", [
    ("I think the bug is in utils.py.", "no JSON object"),
    ("", "no JSON object"),
    ('{"path": "README.md"}', 'no "tool" key'),
    ('{"tool": "view", "arguments": {"path": "say "hi""}}', "not valid JSON"),
    ('{"tool": "edit_file", "arguments": {"path": "a.py"}}', 'no tool named "edit_file"'),
    ('{"tool": 3, "arguments": {}}', "no tool named 3"),
    ('{"tool": "view", "arguments": ["README.md"]}', "list, not a JSON object"),
    ('{"tool": "view", "arguments": "README.md"}', "not a valid JSON object"),
    ('{"tool": "view", "arguments": {"path": "README.md"', None),
    ('{"tool": "view", "arguments": {"path": {"nested": {"deep": 1', "not closed"),
    ('{"tool": "bash", "arguments": {"command": "echo cut off here', "not closed"),
], ids=["prose-only", "empty", "no-tool-key", "unescaped-quotes", "unknown-tool", "tool-not-a-string",
        "arguments-list", "arguments-bad-string", "two-braces-missing-is-fine", "three-braces-missing",
        "cut-off-in-a-string"])
def test_errors_say_what_was_wrong(text, expected):
    if expected is None:
        parse(text)
        return
    with pytest.raises(FormatError) as caught:
        parse(text)
    message = str(caught.value)
    assert expected in message
    assert '{"thought": "Read the README to learn what the project is.", "tool": "view"' in message


def test_unknown_tool_lists_the_available_ones():
    with pytest.raises(FormatError, match="The tools are: bash, complete, view."):
        parse('{"tool": "run", "arguments": {}}')


def test_error_example_is_the_given_one():
    with pytest.raises(FormatError, match="for example:\nEXAMPLE"):
        parse_text_call("no json", NAMES, example="EXAMPLE")


def error_messages():
    """Every FormatError message a model can read, for the placeholder check."""
    replies = ["nothing", '{"path": 1}', '{"tool": "view" "arguments": {}}', '{"tool": "nope", "arguments": {}}',
               '{"tool": "view", "arguments": 5}', '{"tool": "view", "arguments": "{bad"}']
    messages = []
    for reply in replies:
        for names in (NAMES, ["complete"], ["write_file", "complete"]):
            with pytest.raises(FormatError) as caught:
                parse_text_call(reply, names)
            messages.append(str(caught.value))
    for message in ({"tool_calls": [{"id": "1", "function": {"name": "view", "arguments": "{path: README.md"}}]},
                    {"tool_calls": [{"id": "1", "function": {"name": "view", "arguments": "[1]"}}]}):
        with pytest.raises(FormatError) as caught:
            calls_from_openai_message(message)
        messages.append(str(caught.value))
    return messages


def test_no_placeholders_in_what_the_model_reads():
    write = ToolSpec("write_file", "Write a file.", {"type": "object", "properties": {
        "path": {"type": "string", "description": "Where."}, "content": {"type": "string", "description": "What."},
        "mode": {"type": "string", "enum": ["overwrite", "append"]}}, "required": ["path", "content", "mode"]})
    texts = error_messages() + [text_protocol_instructions(SPECS), text_protocol_instructions([write, COMPLETE])]
    for text in texts:
        assert "<" not in text and ">" not in text, text
        assert "..." not in text and "…" not in text, text


def test_instructions_are_deterministic_and_complete():
    first = text_protocol_instructions(SPECS)
    again = text_protocol_instructions([ToolSpec(s.name, s.description, json.loads(json.dumps(s.parameters)))
                                        for s in SPECS])
    assert first == again
    assert "- path (string, required): File to show, relative to the workdir." in first
    assert "- start_line (integer, optional): First line to show. Default: 1." in first
    assert "- command (string, required): The command line." in first
    assert "## complete\nFinish the task.\nParameters:\n- none" in first
    assert example_reply(SPECS) in first


def test_example_reply_is_a_valid_call_for_any_tool_set():
    write = ToolSpec("write_file", "Write a file.", {"type": "object", "properties": {
        "path": {"type": "string"}, "lines": {"type": "array", "items": {"type": "string"}},
        "mode": {"type": "string", "enum": ["append", "overwrite"]}}, "required": ["path", "lines", "mode"]})
    for specs in (SPECS, [BASH, COMPLETE], [write], [COMPLETE]):
        example = example_reply(specs)
        call = parse_text_call(example, [spec.name for spec in specs]).call
        spec = next(spec for spec in specs if spec.name == call.name)
        assert set(spec.parameters.get("required", [])) <= set(call.arguments)
    assert json.loads(example_reply([write]))["arguments"] == {"path": "README.md", "lines": [], "mode": "append"}
    tree = ToolSpec("tree", "List files.", {"type": "object", "properties": {}, "required": []})
    assert json.loads(example_reply([BASH, tree]))["tool"] == "tree"


def test_instruction_types_for_arrays_unions_and_enums():
    spec = ToolSpec("grep", "Search.", {"type": "object", "properties": {
        "globs": {"type": "array", "items": {"type": "string"}, "description": "File globs."},
        "limit": {"type": ["integer", "null"]},
        "case": {"type": "string", "enum": ["smart", "exact"], "description": "Case handling."}}})
    text = text_protocol_instructions([spec])
    assert "- globs (array of string, optional): File globs." in text
    assert "- limit (integer or null, optional):" in text
    assert '- case (string, optional): Case handling. One of: "smart", "exact".' in text


def test_reply_schema():
    schema = text_reply_schema(SPECS)
    assert schema["properties"]["tool"] == {"type": "string", "enum": ["view", "bash", "complete"]}
    assert schema["properties"]["arguments"] == {"type": "object"}
    assert schema["properties"]["thought"] == {"type": "string"}
    assert schema["required"] == ["thought", "tool", "arguments"]
    json.dumps(schema)


def test_native_tool_lists():
    assert openai_tools([VIEW]) == [{"type": "function", "function": {
        "name": "view", "description": VIEW.description, "parameters": VIEW.parameters}}]
    assert anthropic_tools([VIEW]) == [{"name": "view", "description": VIEW.description,
                                        "input_schema": VIEW.parameters}]


def test_openai_calls():
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "view", "arguments": '{"path": "README.md"}'}},
        {"id": "b", "type": "function", "function": {"name": "bash", "arguments": {"command": "ls"}}},
        {"id": "c", "type": "function", "function": {"name": "complete", "arguments": ""}},
        {"type": "function", "function": {"name": "bash", "arguments": '{"command": "ls",}'}},
    ]}
    assert calls_from_openai_message(message) == [
        ToolCall("a", "view", {"path": "README.md"}), ToolCall("b", "bash", {"command": "ls"}),
        ToolCall("c", "complete", {}), ToolCall("call_3", "bash", {"command": "ls"})]
    assert calls_from_openai_message({"role": "assistant", "content": "done"}) == []
    assert calls_from_openai_message({"role": "assistant", "content": "done", "tool_calls": None}) == []


def test_openai_malformed_arguments_name_the_tool():
    message = {"tool_calls": [{"id": "a", "function": {"name": "bash", "arguments": '{"command": "ls'}}]}
    with pytest.raises(FormatError, match='call to "bash" are not valid JSON: Unterminated string'):
        calls_from_openai_message(message)
    message = {"tool_calls": [{"id": "a", "function": {"name": "bash", "arguments": '"ls"'}}]}
    with pytest.raises(FormatError, match='call to "bash" are a str, not a JSON object'):
        calls_from_openai_message(message)


def test_anthropic_calls():
    content = [{"type": "text", "text": "Let me look."},
               {"type": "tool_use", "id": "toolu_1", "name": "view", "input": {"path": "README.md"}},
               {"type": "tool_use", "id": "toolu_2", "name": "complete", "input": {}}]
    assert calls_from_anthropic_content(content) == [ToolCall("toolu_1", "view", {"path": "README.md"}),
                                                     ToolCall("toolu_2", "complete", {})]
    assert calls_from_anthropic_content([{"type": "text", "text": "hi"}]) == []
