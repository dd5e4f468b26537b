"""The review's view of an attempt: a compact text of the window for the overseer's model (agents and sub-agents
with status, duration, tokens and cost; the latest tool calls and results, cut; the detectors' findings; the
overseer's own notes from last time). Short on purpose: the overseer's budget is a small share of the agent's."""

from __future__ import annotations

from collections.abc import Sequence

from sica.overseer.detectors import Finding
from sica.overseer.window import Window, cut

#: Tool steps and model texts shown, the latest ones.
SHOWN_STEPS = 12
SHOWN_CALLS = 4
#: Characters of a tool result or a model's text shown.
SHOWN_CHARS = 240


#: Characters of the task statement shown.
SHOWN_TASK_CHARS = 600


def render_window(
    window: Window, findings: Sequence[Finding], notes: str, *, task: str = "", actions: Sequence[str] = ()
) -> str:
    """The window as the reviewer reads it: the task (`task`, empty: not given), the attempt, the detectors'
    findings, and what the overseer did so far (`actions`, the harness's record, not the model's notes)."""
    limits = window.limits
    time_part = f"{window.elapsed_s:.0f} s" + (f" of {limits.time_limit_s:.0f} s" if limits.time_limit_s else "")
    budget_part = f"${window.spent_usd:.4f}" + (f" of ${limits.budget_usd:.4f}" if limits.budget_usd else "")
    lines = [
        f"Task: {cut(task, SHOWN_TASK_CHARS) if task.strip() else '(not given)'}",
        "",
        f"Attempt: {time_part}, {budget_part} spent, {window.events_seen} events "
        f"({window.invalid_lines} invalid lines), {len(window.calls)} model calls in view, "
        f"{window.calls_since_event} since the agent's last event.",
        "",
        "Agents (id, parent, kind, status, seconds, model calls, tool calls, tokens in/out, cost):",
    ]
    cost_by_agent = _ledger_cost(window)
    for agent in list(window.agents.values())[-20:]:
        end = agent.ended_at if agent.ended_at is not None else window.now
        lines.append(
            f"- {agent.agent_id} parent={agent.parent_id or '-'} {agent.kind or '?'} {agent.status} "
            f"{end - agent.started_at:.0f}s calls={agent.model_calls} tools={agent.tool_calls} "
            f"tokens={agent.input_tokens}/{agent.output_tokens}"
        )
    if not window.agents:
        lines.append("- (the agent has written no events)")
    lines.append(f"Ledger: {cost_by_agent}")
    lines += ["", f"Latest tool steps (of {len(window.steps)} in view; ! = failed, = = a result seen before):"]
    for step in list(window.steps)[-SHOWN_STEPS:]:
        mark = "?" if not step.done else ("!" if not step.ok else ("=" if not step.new_output else " "))
        lines.append(f"{mark} [{step.agent_id}] {step.tool} {cut(step.arguments, 160)}")
        if step.done:
            lines.append(f"    → {cut(step.output, SHOWN_CHARS)}")
    recent_texts = [call for call in window.calls if call.text][-SHOWN_CALLS:]
    if recent_texts:
        lines += ["", "Latest model replies (from the gateway's ledger):"]
        lines += [
            f"- #{c.id} {c.status} tools={'?' if c.tool_calls is None else c.tool_calls}: {cut(c.text, SHOWN_CHARS)}"
            for c in recent_texts
        ]
    agent_notes = list(window.notes)[-6:]
    if agent_notes:
        lines += ["", "Agents' latest messages and errors:"]
        lines += [f"- [{n.agent_id}] {n.kind}: {cut(n.text, SHOWN_CHARS)}" for n in agent_notes]
    lines += ["", "Detectors' findings:"]
    lines += [f"- {finding.line()}" for finding in findings] or ["- none"]
    lines += ["", f"Tool steps so far: {total_steps(window)}. Your actions so far:"]
    lines += [f"- {action}" for action in actions[-6:]] or ["- none"]
    lines += ["", f"Your notes from last time: {cut(notes, 1200) if notes else '(none)'}"]
    return "\n".join(lines)


def total_steps(window: Window) -> int:
    """The attempt's tool steps as its events count them, every agent's."""
    return sum(agent.tool_calls for agent in window.agents.values())


def _ledger_cost(window: Window) -> str:
    calls = list(window.calls)
    if not calls:
        return "no calls in view"
    failed = sum(1 for c in calls if c.status not in ("ok", "ok_unmetered"))
    tokens_in = sum(c.input_tokens for c in calls)
    tokens_out = sum(c.output_tokens for c in calls)
    cost = sum(c.cost_usd for c in calls)
    return f"{len(calls)} calls ({failed} failed), tokens {tokens_in}/{tokens_out}, ${cost:.4f}"
