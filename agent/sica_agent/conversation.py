"""The message history of one agent, in its model's wire format, append-only so prompt caching keeps hitting.

Only when the history nears the model's context window are old tool outputs condensed (all at once, so the
cached prefix is broken rarely), and the run goes on instead of failing for lack of context.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sica_agent.settings import ToolMode, Wire

CONDENSED = "[output condensed to save context; run the tool again if you need it]"
CHARS_PER_TOKEN = 3.0  # conservative: code and JSON run about 3 to 4 characters a token


@dataclass
class Conversation:
    wire: Wire
    tool_mode: ToolMode
    messages: list[dict[str, Any]] = field(default_factory=list)
    _tool_outputs: list[tuple[int, int | None]] = field(default_factory=list)  # (message, block) of each output

    def add_user(self, text: str) -> None:
        # Anthropic messages are always block lists, so that adding a cache breakpoint to the newest message
        # does not change the shape of the history sent before (the cached prefix).
        content: str | list[dict[str, Any]] = [{"type": "text", "text": text}] if self.wire == "anthropic" else text
        self.messages.append({"role": "user", "content": content})

    def add_assistant(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    def add_tool_result(self, call_id: str, tool: str, output: str) -> None:
        """Append a tool's output where this wire and mode expect it."""
        if self.tool_mode == "text":
            self._tool_outputs.append((len(self.messages), None))
            self.add_user(f"Result of {tool}:\n{output}")
        elif self.wire == "anthropic":
            block = {"type": "tool_result", "tool_use_id": call_id, "content": output}
            last = self.messages[-1] if self.messages else None
            if (
                last
                and last["role"] == "user"
                and isinstance(last["content"], list)
                and last["content"]
                and last["content"][0].get("type") == "tool_result"
            ):
                self._tool_outputs.append((len(self.messages) - 1, len(last["content"])))
                last["content"].append(block)
            else:
                self._tool_outputs.append((len(self.messages), 0))
                self.messages.append({"role": "user", "content": [block]})
        else:
            self._tool_outputs.append((len(self.messages), None))
            self.messages.append({"role": "tool", "tool_call_id": call_id, "content": output})

    def _replace_user_text(self, index: int, text: str) -> None:
        content = [{"type": "text", "text": text}] if self.wire == "anthropic" else text
        self.messages[index] = {"role": "user", "content": content}

    def estimated_tokens(self, system: str) -> int:
        return int((len(system) + len(json.dumps(self.messages, ensure_ascii=False))) / CHARS_PER_TOKEN)

    def condense(self, keep_last: int = 3) -> int:
        """Replace all but the last `keep_last` tool outputs by a short note; returns how many were condensed."""
        condensed = 0
        for message_index, block_index in self._tool_outputs[: -keep_last or None]:
            message = self.messages[message_index]
            if block_index is not None:
                block = message["content"][block_index]
                if block["content"] != CONDENSED:
                    block["content"] = CONDENSED
                    condensed += 1
            elif self.tool_mode == "text":
                text = message["content"] if isinstance(message["content"], str) else message["content"][0]["text"]
                if not text.endswith(CONDENSED):
                    self._replace_user_text(message_index, f"{text.split(chr(10), 1)[0]}\n{CONDENSED}")
                    condensed += 1
            elif message["content"] != CONDENSED:
                message["content"] = CONDENSED
                condensed += 1
        return condensed
