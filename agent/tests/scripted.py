"""A scripted model for the agent's own tests: replays responses in the gateway's wire formats.

A response has the fields of a line of the harness's scripted model (sica's gateway, `provider = "scripted"`):
`{"content": "..."}` and/or `{"tool_calls": [{"name", "arguments"}]}`, optionally `"usage": {"input", "output"}`
(else 10 in, 5 out) and `"latency_s": X`; or `{"error": {"status": 402|503|400, "message": "..."}}`, the error
the gateway answers with. A latency is not slept: a request whose read timeout is shorter gets
`httpx.ReadTimeout`. The requests the agent sent are kept, so tests can check what the model was shown.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from sica_agent.agent import Runtime
from sica_agent.llm import ModelClient
from sica_agent.run import build_runtime
from sica_agent.settings import ModelRole, Settings

#: A response's fields, as in a line of the gateway's scripted model.
FIELDS = frozenset({"content", "tool_calls", "usage", "latency_s", "error"})


class ScriptedModel:
    def __init__(self, responses: list[dict[str, Any]], wire: str = "openai") -> None:
        for response in responses:
            if unknown := set(response) - FIELDS:
                raise ValueError(f"a scripted response has no field {sorted(unknown)}; its fields: {sorted(FIELDS)}")
        self.responses = list(responses)
        self.wire = wire
        self.requests: list[dict[str, Any]] = []
        self._actions: dict[int, Callable[[], None]] = {}

    def before_request(self, number: int, action: Callable[[], None]) -> None:
        """Run `action` just before answering request `number` (0-based): e.g. write to the inbox mid-run."""
        self._actions[number] = action

    def handle(self, request: httpx.Request) -> httpx.Response:
        if (action := self._actions.pop(len(self.requests), None)) is not None:
            action()
        body = json.loads(request.content)
        self.requests.append(body)
        if not self.responses:
            return httpx.Response(503, json={"error": {"type": "script_exhausted", "message": "script ended"}})
        line = self.responses.pop(0)
        if line.get("latency_s", 0) > request.extensions["timeout"]["read"]:
            raise httpx.ReadTimeout("scripted model too slow", request=request)
        if "error" in line:
            error = line["error"]
            message = error.get("message", "scripted fault")
            return httpx.Response(error["status"], json={"error": {"type": "scripted_fault", "message": message}})
        usage = {"input": 10, "output": 5, **line.get("usage", {})}
        if self.wire == "anthropic":
            content = [{"type": "text", "text": line["content"]}] if line.get("content") else []
            content += [{"type": "tool_use", "id": f"toolu_{len(self.requests)}_{i}", "name": c["name"],
                         "input": c.get("arguments", {})} for i, c in enumerate(line.get("tool_calls", []))]
            return httpx.Response(200, json={"type": "message", "role": "assistant", "content": content,
                                             "stop_reason": "end_turn",
                                             "usage": {"input_tokens": usage["input"],
                                                       "output_tokens": usage["output"]}})
        message: dict[str, Any] = {"role": "assistant", "content": line.get("content")}
        if line.get("tool_calls"):
            message["tool_calls"] = [
                {"id": f"call_{len(self.requests)}_{i}", "type": "function",
                 "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}}
                for i, c in enumerate(line["tool_calls"])]
        return httpx.Response(200, json={"choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                                         "usage": {"prompt_tokens": usage["input"],
                                                   "completion_tokens": usage["output"]}})


def settings_for(wire: str = "openai", tool_mode: str = "native", context_window: int = 32768,
                 time_limit_s: float = 120) -> Settings:
    role = ModelRole("scripted", wire, tool_mode, context_window)  # type: ignore[arg-type]
    return Settings(gateway="http://gateway.invalid", token="test-token", models={"main": role, "reasoning": role},
                    run_id="test-run", problem_id="test-problem", time_limit_s=time_limit_s, cost_limit_usd=None)


def scripted_runtime(model: ScriptedModel, logdir: Path, settings: Settings, archive: Path | None = None) -> Runtime:
    """The real runtime (tools, sub-agents, events, inbox) with the scripted model behind its HTTP client."""
    runtime = build_runtime(settings, logdir, archive)
    runtime.model = ModelClient(httpx.Client(transport=httpx.MockTransport(model.handle),
                                             base_url="http://gateway.invalid", timeout=900))
    return runtime


def read_events(logdir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (logdir / "events.jsonl").read_text().splitlines()]

