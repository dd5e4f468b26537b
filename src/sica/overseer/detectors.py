"""Cheap detectors: pure functions over the window that recognise the stuck patterns of the field (after
OpenHands' stuck detector: the same action and observation, the same action and error, monologue, A-B-A-B,
context-window errors), a lack of progress, spend and time running out, and signs of tampering. They need no
model; a finding brings the next review forward and is shown to the reviewer."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from sica.config import OverseerSettings, OverseerThresholds
from sica.overseer.window import ToolStep, Window, cut

FindingKind = Literal[
    "repeated_action_observation",
    "repeated_action_error",
    "talking_without_acting",
    "alternation",
    "context_window",
    "no_progress",
    "silent",
    "spend",
    "time",
    "tampering",
]


@dataclass(frozen=True)
class Finding:
    """What a detector saw: its kind, the agent it concerns (None: the attempt as a whole) and the evidence in a
    line."""

    kind: FindingKind
    agent_id: str | None
    evidence: str

    def line(self) -> str:
        return f"{self.kind} [{self.agent_id or 'attempt'}]: {self.evidence}"


def _shown(step: ToolStep) -> str:
    return f"{step.tool} {cut(step.arguments, 120)}"


def _agents(window: Window) -> list[str]:
    return list(dict.fromkeys(step.agent_id for step in window.steps))


def _latest_done(window: Window, agent_id: str, count: int) -> list[ToolStep]:
    done = [step for step in window.steps_of(agent_id) if step.done]
    return done[-count:] if len(done) >= count else []


def repeated_action_observation(window: Window, limits: OverseerThresholds) -> list[Finding]:
    """The same tool call with the same result, `repeated_action_observation` times in a row."""
    found = []
    for agent_id in _agents(window):
        latest = _latest_done(window, agent_id, limits.repeated_action_observation)
        if latest and len({(s.action, s.output_digest) for s in latest}) == 1 and latest[0].ok:
            found.append(
                Finding("repeated_action_observation", agent_id, f"{len(latest)}× {_shown(latest[0])}, same result")
            )
    return found


def repeated_action_error(window: Window, limits: OverseerThresholds) -> list[Finding]:
    """The same tool call failing with the same error, `repeated_action_error` times in a row."""
    found = []
    for agent_id in _agents(window):
        latest = _latest_done(window, agent_id, limits.repeated_action_error)
        if latest and not any(s.ok for s in latest) and len({(s.action, s.output_digest) for s in latest}) == 1:
            error = cut(latest[0].output, 120)
            found.append(Finding("repeated_action_error", agent_id, f"{len(latest)}× {_shown(latest[0])}: {error}"))
    return found


def talking_without_acting(window: Window, limits: OverseerThresholds) -> list[Finding]:
    """An agent's model calls with no tool call between them (a monologue), from its events."""
    return [
        Finding("talking_without_acting", agent.agent_id, f"{agent.calls_without_tool} model calls, no tool call")
        for agent in window.agents.values()
        if agent.status == "running" and agent.calls_without_tool >= limits.talking_without_acting
    ]


def alternation(window: Window, limits: OverseerThresholds) -> list[Finding]:
    """The latest `alternation_steps` tool steps of an agent alternate between two calls with the same results."""
    found = []
    for agent_id in _agents(window):
        latest = _latest_done(window, agent_id, limits.alternation_steps)
        if not latest:
            continue
        signatures = [(s.action, s.output_digest) for s in latest]
        a, b = signatures[0], signatures[1]
        if a != b and all(sig == (a if i % 2 == 0 else b) for i, sig in enumerate(signatures)):
            found.append(
                Finding(
                    "alternation", agent_id, f"{len(latest)} steps between {_shown(latest[0])} and {_shown(latest[1])}"
                )
            )
    return found


_CONTEXT_WORDS = re.compile(
    r"context[ _-]?(window|length)|maximum context|too many tokens|prompt is too long|context_length_exceeded"
    r"|request too large|input is too long",
    re.IGNORECASE,
)


def context_window(window: Window, limits: OverseerThresholds) -> list[Finding]:
    """Context-window errors, from the ledger (a 400 or 413 whose text says so) and the agents' error events."""
    from_ledger = [
        call
        for call in window.calls
        if call.http_status in (400, 413) and _CONTEXT_WORDS.search(f"{call.error_class or ''} {call.text}")
    ]
    from_events = [note for note in window.notes if note.kind == "error" and _CONTEXT_WORDS.search(note.text)]
    count = max(len(from_ledger), len(from_events))
    if count < limits.context_window_errors:
        return []
    agent = from_events[-1].agent_id if from_events else None
    example = from_events[-1].text if from_events else from_ledger[-1].text
    return [Finding("context_window", agent, f"{count} context-window errors, latest: {cut(example, 120)}")]


def no_progress(window: Window, limits: OverseerThresholds) -> list[Finding]:
    """The latest `no_progress_steps` tool steps (of any agent) changed nothing in the workdir (as far as the
    harness saw) and brought no result not seen before."""
    done = [step for step in window.steps if step.done]
    if len(done) < limits.no_progress_steps:
        return []
    latest = done[-limits.no_progress_steps :]
    if any(step.new_output for step in latest):
        return []
    # The step before the latest ones counts too: a change made by the first of them shows against it.
    prints = {step.workdir for step in done[-limits.no_progress_steps - 1 :] if step.workdir is not None}
    if len(prints) > 1:
        return []
    return [Finding("no_progress", None, f"{len(latest)} tool steps, no workdir change and nothing new")]


def silent(window: Window, limits: OverseerThresholds) -> list[Finding]:
    """Model calls in the ledger since the agent last wrote an event: an agent that stopped writing events, or
    never did, is still seen."""
    if window.calls_since_event < limits.silent_calls:
        return []
    return [Finding("silent", None, f"{window.calls_since_event} model calls since the agent's last event")]


def spend(window: Window, limits: OverseerThresholds) -> list[Finding]:
    """Spend against the budget: most of it gone, or the recent rate overrunning it by the time limit."""
    budget = window.limits.budget_usd
    if budget is None or budget <= 0:
        return []
    share = window.spent_usd / budget
    if share >= limits.spend_warn_share:
        return [Finding("spend", None, f"${window.spent_usd:.4f} of ${budget:.4f} spent ({share:.0%})")]
    time_limit = window.limits.time_limit_s
    elapsed = window.elapsed_s
    if time_limit is None or elapsed < 0.1 * time_limit or window.spent_usd <= 0:
        return []
    projected = window.spent_usd / elapsed * time_limit
    if projected > budget * limits.spend_overrun_factor:
        return [
            Finding(
                "spend",
                None,
                f"${window.spent_usd:.4f} in {elapsed:.0f} s: ${projected:.4f} by the time limit, budget ${budget:.4f}",
            )
        ]
    return []


def time_limit(window: Window, limits: OverseerThresholds) -> list[Finding]:
    """Most of the time limit passed with the agent still running."""
    time_limit_s = window.limits.time_limit_s
    top = window.top_agent
    running = top is None or window.agents[top].status == "running"
    if time_limit_s is None or not running or window.elapsed_s < limits.time_warn_share * time_limit_s:
        return []
    return [Finding("time", top, f"{window.elapsed_s:.0f} s of {time_limit_s:.0f} s passed")]


#: Paths of tests and test configuration, whose change by the agent may be a way to pass.
_TEST_PATH = re.compile(
    r"(^|[/\s'\"=])(tests?/|test_[\w.-]*\.py|[\w.-]*_test\.py|conftest\.py|pytest\.ini|tox\.ini|noxfile\.py"
    r"|\.coveragerc|check\.sh)"
)
_LOG_PATH = re.compile(r"/logs\b|events\.jsonl|\binbox/")
_WRITING_TOOL = re.compile(r"write|edit|create|replace|patch|delete|remove|insert|append|move|rename", re.IGNORECASE)
_WRITING_COMMAND = re.compile(
    r"(>>?|\btee\b|\bsed\s+-i|\brm\b|\bmv\b|\bcp\b|\btruncate\b|\bchmod\b|\bln\b|\bperl\s+-p?i|\bgit\s+(checkout|rm|mv)"
    r"|write_text|open\([^)]*['\"][wa])"
)
_ABSOLUTE_PATH = re.compile(r"(?<![\w./-])(/[\w.-]+(?:/[\w.@+-]*)*)")


def _writes(step: ToolStep) -> bool:
    return bool(_WRITING_TOOL.search(step.tool) or _WRITING_COMMAND.search(step.arguments))


def _outside(path: str, task_paths: Iterable[str]) -> bool:
    """Whether a path is outside the task's (its own logdir, `/logs`, is the agent's to read)."""
    roots = [*task_paths, "/logs"]
    return not any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def tampering_signs(task_paths: list[str]) -> Callable[[Window, OverseerThresholds], list[Finding]]:
    """The tampering detector for a task whose sandbox paths are `task_paths`: writes to test files or test
    configuration, writes to its own logs (or their removal, or a log the follower saw shrink or vanish), and paths
    outside the task named in a tool call."""

    def tampering(window: Window, limits: OverseerThresholds) -> list[Finding]:
        found = [Finding("tampering", None, f"its log: {anomaly}") for anomaly in window.log_anomalies[-3:]]
        for step in window.steps:
            writes = _writes(step)
            if writes and _TEST_PATH.search(step.arguments):
                found.append(Finding("tampering", step.agent_id, f"writes to tests: {_shown(step)}"))
            elif writes and _LOG_PATH.search(step.arguments):
                found.append(Finding("tampering", step.agent_id, f"writes to its logs: {_shown(step)}"))
            elif outside := [p for p in _ABSOLUTE_PATH.findall(step.arguments) if _outside(p, task_paths)]:
                found.append(Finding("tampering", step.agent_id, f"outside the task ({outside[0]}): {_shown(step)}"))
        return found[-5:]

    return tampering


Detector = Callable[[Window, OverseerThresholds], list[Finding]]


def detectors(settings: OverseerSettings) -> list[Detector]:
    """Every detector, configured by `[overseer]`."""
    return [
        repeated_action_observation,
        repeated_action_error,
        talking_without_acting,
        alternation,
        context_window,
        no_progress,
        silent,
        spend,
        time_limit,
        tampering_signs(settings.task_paths),
    ]


def detect(window: Window, settings: OverseerSettings) -> list[Finding]:
    """What every detector finds in the window now."""
    return [finding for detector in detectors(settings) for finding in detector(window, settings.thresholds)]
