"""One agent: a model, a system prompt, some tools and limits, run step by step until it finishes.

Each step: read the inbox (notifications become messages; a cancel stops the agent), ask the model, run the
tool it called, append the result. Sub-agents are tools too (`subagents.py`): a child runs with its own
history and limits and hands a typed result back to its caller.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sica_agent import toolcalls
from sica_agent.conversation import CHARS_PER_TOKEN, Conversation
from sica_agent.events import EventLog
from sica_agent.inbox import Inbox
from sica_agent.llm import BudgetExceeded, ModelCallError, ModelClient, ModelReply, OutOfTime, UpstreamUnavailable
from sica_agent.settings import ModelRole, Settings
from sica_agent.tools import run_tool
from sica_agent.tools.base import Tool, ToolContext, ToolResult

MAX_FORMAT_ERRORS = 3
CONTEXT_HIGH_WATER = 0.7  # condense old tool outputs once the history fills this share of the window
OUTPUT_SHARE = 0.2  # one tool output takes at most this share of the window (a small model's 8k fill fast)


@dataclass(frozen=True)
class AgentKind:
    """What kind of agent: its model role, instructions, tools (by name) and limits."""

    name: str
    role: str
    instructions: str
    tools: tuple[str, ...]
    max_steps: int
    time_limit_s: float


@dataclass(frozen=True)
class AgentResult:
    """What an agent hands back: how it ended, its answer or summary, and how far it got."""

    status: str
    summary: str
    answer: str | None = None
    steps: int = 0


class RunEnded(BaseException):
    """A condition that ends every agent of the run (budget spent, model unreachable). A BaseException, so
    that tools catching their own failures (`except Exception`) let it through."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Runtime:
    """What all agents of one run share: settings, the model client, the event log, the inbox, the clock."""

    settings: Settings
    model: ModelClient
    events: EventLog
    inbox: Inbox
    deadline: float
    tool_factories: Mapping[str, Callable[[Runtime, ToolContext, list[str]], Tool]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def new_agent_id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"


def ask_model(
    runtime: Runtime,
    emit: Callable[..., None],
    role: ModelRole,
    system: str,
    messages: list[dict[str, Any]],
    **options: Any,
) -> ModelReply:
    """One model call, recorded as an `llm_call` event. A spent budget or an unreachable model ends the run."""
    started = time.monotonic()
    try:
        reply = runtime.model.chat(role, system, messages, **options)
    except BudgetExceeded as error:
        raise RunEnded("budget_exceeded", str(error)) from None
    except UpstreamUnavailable as error:
        raise RunEnded("infra_error", str(error)) from None
    emit(
        "llm_call",
        model=role.alias,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        cache_read_tokens=reply.cache_read_tokens,
        seconds=round(time.monotonic() - started, 3),
        stop_reason=reply.stop_reason,
    )
    return reply


def fit_output(output: str, limit: int) -> str:
    """A tool's output cut to `limit` characters (its head and tail kept), saying how to see the rest."""
    if len(output) <= limit:
        return output
    head, tail = output[: limit * 2 // 3], output[-(limit // 3) :]
    return (
        f"{head}\n[... {len(output) - len(head) - len(tail)} characters cut to fit the model's context; "
        f"view a range of lines or search for what you need ...]\n{tail}"
    )


class Agent:
    """Runs one agent to the end. Build it with a kind, a tool context and the task text."""

    def __init__(
        self,
        kind: AgentKind,
        runtime: Runtime,
        context: ToolContext,
        task: str,
        parent_lineage: list[str] | None = None,
    ) -> None:
        self.kind = kind
        self.runtime = runtime
        self.context = context
        self.task = task
        self.id = runtime.new_agent_id(kind.name)
        self.lineage = [self.id, *(parent_lineage or [])]
        self.role: ModelRole = runtime.settings.model(kind.role)
        self.tools: dict[str, Tool] = {
            name: runtime.tool_factories[name](runtime, context, self.lineage) for name in kind.tools
        }
        self.specs = [tool.spec for tool in self.tools.values()]
        self.system = self._system_prompt()
        self.history = Conversation(self.role.wire, self.role.tool_mode)
        self._deadline = min(runtime.deadline, time.monotonic() + kind.time_limit_s)

    @property
    def parent_id(self) -> str | None:
        return self.lineage[1] if len(self.lineage) > 1 else None

    def emit(self, event_type: str, **data: Any) -> None:
        self.runtime.events.emit(self.id, self.parent_id, event_type, **data)

    def _system_prompt(self) -> str:
        if self.role.tool_mode == "text":
            return f"{self.kind.instructions}\n\n{toolcalls.text_protocol_instructions(self.specs)}"
        return self.kind.instructions

    def run(self) -> AgentResult:
        """Run until the agent finishes, fails or is stopped; `RunEnded` propagates to the top agent's caller."""
        self.emit("agent_start", kind=self.kind.name, task=self.task, model=self.role.alias)
        self.history.add_user(self.task)
        try:
            result = self._loop()
        except RunEnded as ended:
            self.emit("agent_end", status=ended.status, summary=ended.reason, steps=0)
            raise
        self.emit("agent_end", status=result.status, summary=result.summary, answer=result.answer, steps=result.steps)
        return result

    def _loop(self) -> AgentResult:
        format_errors = 0
        seen: dict[tuple[str, str], tuple[int, str]] = {}  # each call made: the step and the output it last gave
        temperature = 0.2
        last_progress = "no progress yet"
        for step in range(1, self.kind.max_steps + 1):
            reason = self.runtime.inbox.cancellation(self.lineage)
            if reason is not None:
                return AgentResult("cancelled", f"cancelled ({reason}); {last_progress}", steps=step - 1)
            for note in self.runtime.inbox.notes_for(self.id):
                self.emit("notification", text=note)
                self.history.add_user(f"Message from the supervisor: {note}")
            if time.monotonic() >= self._deadline:
                return AgentResult("timeout", f"ran out of time; {last_progress}", steps=step - 1)
            self._keep_within_context()
            try:
                reply = self._ask(temperature)
            except OutOfTime as error:
                return AgentResult("timeout", f"{error}; {last_progress}", steps=step - 1)
            self.history.add_assistant(reply.message)
            try:
                calls, ignored, thought = self._calls(reply)
            except toolcalls.FormatError as error:
                format_errors += 1
                self.emit("error", kind="format_error", message=str(error), reply=reply.text[:2000])
                if format_errors >= MAX_FORMAT_ERRORS:
                    return AgentResult("format_error", f"{format_errors} malformed replies in a row", steps=step)
                self._answer_malformed(reply, str(error))
                continue
            format_errors = 0
            if thought.strip():
                self.emit("message", text=thought[:4000])
            temperature = 0.2
            for call in calls:
                signature = (call.name, json.dumps(call.arguments, sort_keys=True))
                result = self._run_tool(call)
                output = fit_output(result.output, int(self.role.context_window * OUTPUT_SHARE * CHARS_PER_TOKEN))
                earlier = seen.get(signature)
                if earlier is not None and earlier[1] == result.output:
                    output = (
                        f"{output}\n\nNote: you made exactly this call at step {earlier[0]} and got exactly "
                        "this output; repeating it will not help. Do something different: act on what you "
                        "have learned (edit a file, run a check), look somewhere new, or call complete."
                    )
                    temperature = 0.8
                seen[signature] = (step, result.output)
                if ignored:
                    output += f"\n\nNote: only your first tool call was run ({ignored} more ignored): one call a turn."
                self.history.add_tool_result(call.id, call.name, output)
                last_progress = f"last step: {call.name} → {result.output[:200]}"
                if result.final:
                    return AgentResult("done", result.output, result.answer, steps=step)
        return AgentResult(
            "timeout", f"used all {self.kind.max_steps} steps; {last_progress}", steps=self.kind.max_steps
        )

    def _keep_within_context(self) -> None:
        budget = self.role.context_window * CONTEXT_HIGH_WATER
        if self.history.estimated_tokens(self.system) > budget:
            condensed = self.history.condense()
            if self.history.estimated_tokens(self.system) > budget:  # the last outputs are what fills it
                condensed += self.history.condense(keep_last=1)
            self.emit("message", text=f"condensed {condensed} old tool outputs to stay within the context window")

    def _ask(self, temperature: float) -> ModelReply:
        native = self.role.tool_mode == "native"
        tools = None
        if native:
            tools = (toolcalls.anthropic_tools if self.role.wire == "anthropic" else toolcalls.openai_tools)(self.specs)
        response_format = None
        if not native and self.role.wire == "openai":
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": "tool_call", "schema": toolcalls.text_reply_schema(self.specs)},
            }
        try:
            return ask_model(
                self.runtime,
                self.emit,
                self.role,
                self.system,
                self.history.messages,
                max_tokens=4096 if native else 1024,
                temperature=temperature,
                tools=tools,
                response_format=response_format,
                time_left_s=self._deadline - time.monotonic(),
            )
        except OutOfTime:
            raise
        except ModelCallError as error:
            self.emit("error", kind="model_call", status=error.status, message=str(error))
            raise RunEnded("error", f"the model call failed (HTTP {error.status}): {error}") from None

    def _calls(self, reply: ModelReply) -> tuple[list[toolcalls.ToolCall], int, str]:
        """The tool calls of a reply, how many extra text-mode calls were ignored, and the model's thought."""
        names = list(self.tools)
        if self.role.tool_mode == "text":
            parsed = toolcalls.parse_text_call(reply.text, names, example=toolcalls.example_reply(self.specs))
            return [parsed.call], parsed.extra_calls_ignored, parsed.thought
        if self.role.wire == "anthropic":
            calls = toolcalls.calls_from_anthropic_content(reply.message["content"])
        else:
            calls = toolcalls.calls_from_openai_message(reply.message)
        if not calls:
            raise toolcalls.FormatError(
                "Your reply called no tool. Every reply must call exactly one of the tools "
                f"({', '.join(names)}); when the task is finished, call complete."
            )
        unknown = [call.name for call in calls if call.name not in self.tools]
        if unknown:
            raise toolcalls.FormatError(f"There is no tool named {unknown[0]!r}. The tools are: {', '.join(names)}.")
        return calls, 0, reply.text

    def _answer_malformed(self, reply: ModelReply, message: str) -> None:
        """Tell the model what was wrong; native calls each need an answer, so each gets the message."""
        if not reply.native_calls:
            self.history.add_user(message)
            return
        for raw in reply.native_calls:
            name = raw.get("name") or (raw.get("function") or {}).get("name", "")
            self.history.add_tool_result(raw.get("id", ""), name, message)

    def _run_tool(self, call: toolcalls.ToolCall) -> ToolResult:
        self.emit("tool_call", tool=call.name, arguments=call.arguments, call_id=call.id)
        started = time.monotonic()
        result = run_tool(self.tools[call.name], call.arguments, self.context)
        self.emit(
            "tool_result",
            tool=call.name,
            call_id=call.id,
            ok=result.ok,
            final=result.final,
            output=result.output[:4000],
            seconds=round(time.monotonic() - started, 3),
        )
        return result
