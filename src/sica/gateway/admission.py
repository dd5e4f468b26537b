"""What a request may ask of an upstream. The body's fields are allow-listed per wire format, and nothing is
dropped silently: an unknown field is refused, naming it, so an agent learns at once what is not honoured. By
default a request may not use provider-side tools (web search, fetch, code execution, MCP servers: they spend
beyond the tokens the gateway meters and reach the network for the agent), may not make the provider fetch a URL
or read a stored file (images and documents only inline, as base64), may ask for one completion only, and may
not send beta headers; an alias lifts these with `allow_server_tools`, `allow_fetched_urls` and
`allow_beta_headers`. Everything here reads the agent's own body and headers, so every check assumes a hostile
author."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sica.config import ModelAlias, Wire
from sica.gateway.errors import GatewayError, bad_request

OPENAI_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "user",
        "n",
        "reasoning_effort",
        "top_k",
        "min_p",
        "repeat_penalty",
    }
)
OPENAI_SERVER_TOOL_FIELDS = frozenset({"web_search_options"})
OPENAI_PARTS = frozenset({"text", "image_url", "file", "refusal"})
ANTHROPIC_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "stream",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
    }
)
ANTHROPIC_SERVER_TOOL_FIELDS = frozenset({"mcp_servers", "container"})
ANTHROPIC_BLOCKS = frozenset({"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"})
#: The Anthropic API version sent when the client names none; a client's own must be a date (SDKs send theirs).
ANTHROPIC_VERSION = "2023-06-01"


@dataclass
class RequestShape:
    """What the checks learnt that bears on the worst case: function tools (the provider adds a tool-use prompt),
    and content whose tokens its bytes do not bound (pictures, documents, provider-side tools)."""

    tools: bool = False
    unbounded_input: bool = False


def shown(value: object) -> str:
    """An agent-written name, quoted and cut short, for an error message."""
    text = value if isinstance(value, str) else repr(value)
    return repr(text if len(text) <= 60 else text[:60] + "…")


def check_request(wire: Wire, body: dict[str, Any], alias_name: str, alias: ModelAlias) -> RequestShape:
    """Refuse (400) what this alias may not be asked; return the request's shape."""
    checker = _Checker(alias_name, alias)
    if wire == "anthropic":
        checker.anthropic(body)
    else:
        checker.openai(body)
    return checker.shape


def upstream_headers(wire: Wire, headers: Mapping[str, str], alias_name: str, alias: ModelAlias) -> dict[str, str]:
    """The client headers passed upstream: for Anthropic its API version, and `anthropic-beta` only when the
    alias enables beta features; nothing else."""
    if wire != "anthropic":
        return {}
    version = headers.get("anthropic-version", ANTHROPIC_VERSION)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", version):
        raise bad_request(f"anthropic-version {shown(version)} is not a date such as {ANTHROPIC_VERSION}")
    passed = {"anthropic-version": version}
    beta = headers.get("anthropic-beta")
    if beta is not None:
        if not alias.allow_beta_headers:
            raise bad_request(
                f"header 'anthropic-beta' is not allowed for alias '{alias_name}' (beta features are "
                "off unless the alias sets allow_beta_headers = true)"
            )
        passed["anthropic-beta"] = beta
    return passed


class _Checker:
    def __init__(self, alias_name: str, alias: ModelAlias) -> None:
        self.alias_name = alias_name
        self.alias = alias
        self.shape = RequestShape()

    def refuse(self, what: str, remedy: str) -> GatewayError:
        return bad_request(f"{what} is not allowed for alias '{self.alias_name}': {remedy}")

    def fields(self, body: dict[str, Any], allowed: frozenset[str], server_tool_fields: frozenset[str]) -> None:
        for name in body:
            if name in server_tool_fields:
                if not self.alias.allow_server_tools:
                    raise self.refuse(
                        f"field {shown(name)} (a provider-side tool)",
                        "provider-side tools are off unless the alias sets allow_server_tools = true",
                    )
                self.shape.unbounded_input = True
            elif name not in allowed:
                raise bad_request(
                    f"field {shown(name)} is not accepted by the gateway; the fields it accepts: "
                    f"{', '.join(sorted(allowed))}"
                )

    def server_tool(self, kind: object) -> None:
        if not self.alias.allow_server_tools:
            raise self.refuse(
                f"tool type {shown(kind)}",
                "only function tools are allowed unless the alias sets allow_server_tools = true",
            )
        self.shape.unbounded_input = True

    def fetched(self, what: str) -> None:
        if not self.alias.allow_fetched_urls:
            raise self.refuse(
                what, "send images and documents inline (base64), or set allow_fetched_urls = true on the alias"
            )

    def attachment(self) -> None:
        self.shape.unbounded_input = True

    def messages(
        self, body: dict[str, Any], check_list: Callable[[list[Any]], None], plain: tuple[type, ...], list_of: str
    ) -> None:
        """Both wires' `messages`: a list of JSON objects, each with a content that is plain (of the `plain` types:
        a string, for OpenAI also null) or a list of `list_of` that `check_list` checks."""
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise bad_request("messages must be a list")
        for message in messages:
            if not isinstance(message, dict):
                raise bad_request("each message must be a JSON object")
            content = message.get("content")
            if isinstance(content, list):
                check_list(content)
            elif not isinstance(content, plain):
                raise bad_request(f"a message's content must be a string or a list of {list_of}")

    # OpenAI chat completions ------------------------------------------------------------------------------------

    def openai(self, body: dict[str, Any]) -> None:
        self.fields(body, OPENAI_FIELDS, OPENAI_SERVER_TOOL_FIELDS)
        n = body.get("n", 1)
        if type(n) is not int or n != 1:
            raise bad_request(f"n must be 1 (one completion a call), not {shown(n)}")
        _optional(body, "stream", bool)
        options = _optional(body, "stream_options", dict) or {}
        if set(options) - {"include_usage"}:
            raise bad_request("stream_options accepts only include_usage")
        for tool in _optional(body, "tools", list) or []:
            kind = tool.get("type") if isinstance(tool, dict) else None
            if kind != "function":
                self.server_tool(kind)
            self.shape.tools = True
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") != "function":
            self.server_tool(choice.get("type"))
        elif not isinstance(choice, (dict, type(None))) and choice not in ("none", "auto", "required"):
            raise bad_request(f"tool_choice {shown(choice)} is not one of none, auto, required or a function")
        response_format = _optional(body, "response_format", dict)
        if response_format is not None and response_format.get("type") not in ("text", "json_object", "json_schema"):
            raise bad_request(f"response_format type {shown(response_format.get('type'))} is not accepted")
        self.messages(body, self.openai_parts, (str, type(None)), "parts")

    def openai_parts(self, parts: list[Any]) -> None:
        for part in parts:
            self.openai_part(part)

    def openai_part(self, part: object) -> None:
        if not isinstance(part, dict):
            raise bad_request("each content part must be a JSON object")
        kind = part.get("type")
        if kind not in OPENAI_PARTS:
            raise bad_request(
                f"content part type {shown(kind)} is not accepted; the gateway accepts "
                f"{', '.join(sorted(OPENAI_PARTS))}"
            )
        if kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            if not isinstance(url, str) or not url.startswith("data:"):
                self.fetched("an image URL the provider would fetch")
            self.attachment()
        elif kind == "file":
            file = part.get("file")
            if not isinstance(file, dict) or "file_data" not in file or "file_id" in file:
                self.fetched("a file part without inline file_data (a file_id names a provider's stored file)")
            self.attachment()

    # Anthropic messages ----------------------------------------------------------------------------------------

    def anthropic(self, body: dict[str, Any]) -> None:
        self.fields(body, ANTHROPIC_FIELDS, ANTHROPIC_SERVER_TOOL_FIELDS)
        _optional(body, "stream", bool)
        metadata = _optional(body, "metadata", dict) or {}
        if set(metadata) - {"user_id"}:
            raise bad_request("metadata accepts only user_id")
        thinking = _optional(body, "thinking", dict)
        if thinking is not None and thinking.get("type") not in ("enabled", "disabled"):
            raise bad_request(f"thinking type {shown(thinking.get('type'))} is not enabled or disabled")
        for tool in _optional(body, "tools", list) or []:
            if not isinstance(tool, dict):
                raise bad_request("each tool must be a JSON object")
            if tool.get("type", "custom") != "custom":
                self.server_tool(tool.get("type"))
            self.cache_control(tool)
            self.shape.tools = True
        choice = _optional(body, "tool_choice", dict)
        if choice is not None and choice.get("type") not in ("auto", "any", "tool", "none"):
            raise bad_request(f"tool_choice type {shown(choice.get('type'))} is not auto, any, tool or none")
        system = body.get("system")
        if isinstance(system, list):
            self.blocks(system)
        elif not isinstance(system, (str, type(None))):
            raise bad_request("system must be a string or a list of text blocks")
        self.messages(body, self.blocks, (str,), "content blocks")

    def blocks(self, blocks: list[Any]) -> None:
        for block in blocks:
            if not isinstance(block, dict):
                raise bad_request("each content block must be a JSON object")
            kind = block.get("type")
            self.cache_control(block)
            if kind not in ANTHROPIC_BLOCKS:
                if not self.alias.allow_server_tools:
                    raise bad_request(
                        f"content block type {shown(kind)} is not accepted; the gateway accepts "
                        f"{', '.join(sorted(ANTHROPIC_BLOCKS))}"
                    )
                self.shape.unbounded_input = True
            elif kind in ("image", "document"):
                self.source(kind, block.get("source"))
            elif kind == "tool_result" and isinstance(block.get("content"), list):
                self.blocks(block["content"])

    def source(self, kind: str, source: object) -> None:
        self.attachment()
        source_type = source.get("type") if isinstance(source, dict) else None
        inline = ("base64",) if kind == "image" else ("base64", "text", "content")
        if source_type not in inline:
            self.fetched(
                f"an {kind} source of type {shown(source_type)} (a URL or stored file the provider would read)"
            )
        if source_type == "content" and isinstance(source, dict) and isinstance(source.get("content"), list):
            self.blocks(source["content"])

    def cache_control(self, block: dict[str, Any]) -> None:
        """Only the 5-minute cache: a 1-hour cache write costs twice the input price, more than it is metered at."""
        control = block.get("cache_control")
        if control is None:
            return
        if not isinstance(control, dict) or control.get("type") != "ephemeral" or control.get("ttl", "5m") != "5m":
            raise bad_request('cache_control must be {"type": "ephemeral"} (the 5-minute cache; no other ttl)')


_KIND_NAMES = {list: "list", dict: "JSON object", bool: "boolean"}


def _optional(body: dict[str, Any], name: str, kind: type) -> Any:
    """The field's value if present, which must be of `kind`."""
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise bad_request(f"{name} must be a {_KIND_NAMES[kind]}")
    return value
