"""The viewer's pages as HTML, rendered on the server from what the viewer read. Everything shown is escaped
(`html.escape`, quotes included) wherever it comes from: the agent wrote much of it (events, tool output, diffs,
model text, descriptions), so none of it can open a tag, an attribute or a script. Links are built here from
numbers and the harness's own folder names (URL-quoted), never taken from what an agent wrote."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from sica.archive.run_db import Evaluation, Version
from sica.events import Event
from sica.report import cells
from sica.report.tables import RunReport
from sica.viewer import charts
from sica.viewer.attempts import AgentSummary, EventsRead
from sica.viewer.ledger import LedgerView
from sica.viewer.runs import RunListing


def e(value: object) -> str:
    """`value` as text safe anywhere in HTML, in element content or a quoted attribute."""
    return escape(str(value), quote=True)


def when(ts: float | None) -> str:
    return "–" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def page(
    title: str, body: str, *, crumbs: Sequence[tuple[str, str]] = (), data: Mapping[str, str] | None = None
) -> str:
    """A whole page: title, breadcrumbs (label, href), the body, the shared script and style. `data` become the
    body's `data-*` attributes, which the script reads (the live stream's address, say)."""
    attrs = "".join(f' data-{e(key)}="{e(value)}"' for key, value in (data or {}).items())
    trail = " / ".join(f'<a href="{e(href)}">{e(label)}</a>' for label, href in [("runs", "/"), *crumbs])
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)} · sica view</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
        '<link rel="stylesheet" href="/static/viewer.css"></head>'
        f"<body{attrs}><header><nav>{trail}</nav>"
        '<span class="others"><a href="/evals">evaluations</a> · <a href="/solves">solves</a></span></header>'
        f'<main><h1>{e(title)}</h1>{body}</main><div id="tooltip" hidden></div>'
        '<script src="/static/viewer.js" defer></script></body></html>'
    )


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], *, table_id: str = "", raw: bool = False) -> str:
    """A table; cells are escaped unless `raw` (cells this module built and escaped itself)."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell if raw else e(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    ident = f' id="{e(table_id)}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def pager(base: str, params: Mapping[str, str], start: int, count: int, total: int | None, more: bool) -> str:
    """Previous/next links over a list shown `count` at a time."""
    links = []
    if start > 0:
        links.append(
            f'<a rel="prev" href="{e(base)}?{e(urlencode({**params, "start": max(0, start - count)}))}">← previous</a>'
        )
    shown = f"{start + 1}–{start + count}" + (f" of {total}" if total is not None else "")
    links.append(f"<span>{e(shown)}</span>")
    if more:
        links.append(f'<a rel="next" href="{e(base)}?{e(urlencode({**params, "start": start + count}))}">next →</a>')
    return f'<p class="pager">{" ".join(links)}</p>'


def run_href(name: str) -> str:
    return f"/runs/{quote(name, safe='')}"


def attempt_href(source: str, relative: str, run: str | None = None) -> str:
    query = f"?{urlencode({'run': run})}" if run else ""
    return f"/attempts/{source}/{quote(relative)}{query}"


# Runs


def runs_page(listings: Sequence[RunListing], start: int, count: int, total: int, runs_dir: str) -> str:
    rows = []
    for r in listings:
        budget = "none" if r.budget_usd is None else f"${r.budget_usd:.2f}"
        rows.append(
            (
                f'<a href="{e(run_href(r.name))}">{e(r.name)}</a>',
                f'<span class="status {e(r.status)}">{e(r.status)}</span>' + (f" {e(r.error)}" if r.error else ""),
                e(f"${r.spent_usd:.4f} of {budget}"),
                e(r.versions),
                e(r.iterations),
                e(cells.agent(r.best)) + ("" if r.best_utility is None else e(f" ({r.best_utility:.3f})")),
            )
        )
    body = f'<p class="note">Runs under {e(runs_dir)}, newest first.</p>'
    if not rows:
        body += "<p>No runs yet: start one with <code>sica improve</code>.</p>"
    else:
        headers = ("run", "status", "spent", "versions", "iterations", "best (utility)")
        body += table(headers, rows, table_id="runs", raw=True)
        body += pager("/", {}, start, count, total, start + count < total)
    running = next((r.name for r in listings if r.status == "running"), None)
    return page("Runs", body, data={"stream": f"{run_href(running)}/stream"} if running else None)


def run_page(
    report: RunReport,
    status: str,
    budget: float | None,
    spend: Sequence[tuple[float, float]],
    start: int = 0,
    count: int = 100,
) -> str:
    """The run: totals, chart and lineage of every version, the iterations table `count` rows a page."""
    name = report.name
    summary = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in cells.summary(report))
    budget_text = "none" if budget is None else f"${budget:.2f}"
    versions = cells.version_table(report)
    rows = []
    paired = list(zip(report.versions, versions.rows, strict=True))
    for row, text in paired[start : start + count]:
        linked = f'<a href="{e(charts.version_href(name, row.number))}">{e(text[0])}</a>'
        rows.append((linked, *(e(cell) for cell in text[1:]), e(row.tampered)))
    steps = cells.meta_step_table(report.meta_steps)
    step_rows = []
    for step, text in zip(report.meta_steps, steps.rows, strict=True):
        folder = f"{name}/meta/iteration-{step.iteration}"
        step_rows.append(
            (
                f'<a href="{e(attempt_href("runs", folder))}">{e(text[0])}</a>',
                *(e(cell) for cell in text[1:]),
            )
        )
    body = (
        f'<p><span class="status {e(status)}" id="run-status">{e(status)}</span> · spent '
        f"${report.totals.spent_usd:.4f} of {e(budget_text)}</p>"
        f'<dl class="summary">{summary}</dl>'
        "<h2>Utility and score per version</h2>"
        '<p class="note">Hover a point for its change, click it for the version.</p>'
        f"{charts.progress_chart(name, report.versions)}"
        f"<h2>Iterations</h2>{table((*versions.headers, 'tampered'), rows, table_id='versions', raw=True)}"
        + pager(run_href(name), {}, start, count, len(paired), start + count < len(paired))
        + f'<p class="note">{e(versions.note)}</p>'
        f"<h2>Lineage</h2>{charts.lineage_tree(name, report.versions, report.totals.best)}"
        f"<h2>Spend over time</h2>{charts.spend_chart(spend, budget)}"
        f"<h2>Meta steps</h2>{table(steps.headers, step_rows, table_id='meta-steps', raw=True)}"
    )
    data = {"stream": f"{run_href(name)}/stream"} if status == "running" else {}
    return page(f"Run {name}", body, crumbs=[(name, run_href(name))], data=data)


# Versions


def highlighted_diff(diff: str) -> str:
    """A patch with its added, removed and hunk lines marked, every line escaped."""
    lines = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---", "diff ")):
            kind = "file"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        elif line.startswith("@@"):
            kind = "hunk"
        else:
            kind = "ctx"
        lines.append(f'<span class="{kind}">{e(line)}</span>')
    return '<pre class="diff">' + "".join(lines) + "</pre>"


def version_page(
    run: str,
    version: Version,
    diff: str,
    evaluations: Sequence[Evaluation],
    links: Mapping[tuple[str, int], str],
    filters: Mapping[str, str],
    start: int,
    count: int,
    total: int,
    running: bool = False,
) -> str:
    number = version.number
    state = version.state if version.state != "invalid" else f"invalid: {version.invalid_reason or '?'}"
    rows = []
    for ev in evaluations:
        link = links.get((ev.problem_id, ev.repeat))
        problem = (
            f'<a href="{e(attempt_href("evals", link, run))}">{e(ev.problem_id)}</a>' if link else e(ev.problem_id)
        )
        rows.append(
            (
                problem,
                e(ev.benchmark),
                e("held-out" if ev.part == "holdout" else ev.part),
                e(ev.repeat),
                f'<span class="status {e(ev.status)}">{e(ev.status)}</span>' + (" (infra)" if ev.infra else ""),
                e(f"{ev.score:.3f}"),
                e(f"{ev.cost_usd:.4f}"),
                e(f"{ev.seconds:.1f}"),
                e(f"{ev.input_tokens} / {ev.output_tokens}"),
                e(ev.overseer or "–"),
            )
        )
    options = "".join(
        f'<option value="{e(v)}"{" selected" if filters.get("status") == v else ""}>{e(v or "any status")}</option>'
        for v in ("", "done", "failed", "timeout", "tampered", "error", "cancelled", "infra")
    )
    form = (
        f'<form class="filters" method="get"><input name="q" placeholder="problem contains" '
        f'value="{e(filters.get("q", ""))}"><select name="status">{options}</select>'
        f'<input name="benchmark" placeholder="benchmark" value="{e(filters.get("benchmark", ""))}">'
        '<button type="submit">filter</button></form>'
    )
    parent = (
        "none (the seed)"
        if version.parent is None
        else f'<a href="{e(charts.version_href(run, version.parent))}">agent-{e(version.parent)}</a>'
    )
    body = (
        f"<p>Parent: {parent} · state: {e(state)} · made {e(when(version.created_at))}</p>"
        f'<h2>Description</h2><pre class="text" id="description">{e(version.description)}</pre>'
        f'<h2>Change log</h2><pre class="text" id="changelog">{e(version.change_log)}</pre>'
        f"<h2>Diff against its parent</h2>{highlighted_diff(diff)}"
        f"<h2>Per-problem results</h2>{form}"
        + table(
            (
                "problem",
                "benchmark",
                "part",
                "repeat",
                "status",
                "score",
                "cost $",
                "time s",
                "tokens in/out",
                "overseer",
            ),
            rows,
            table_id="results",
            raw=True,
        )
        + pager(charts.version_href(run, number), filters, start, count, total, start + count < total)
    )
    crumbs = [(run, run_href(run)), (f"agent-{number}", charts.version_href(run, number))]
    data = {"stream": f"{run_href(run)}/stream"} if running else {}
    return page(f"agent-{number} of {run}", body, crumbs=crumbs, data=data)


# Attempts


def _event_text(event: Event) -> str:
    """An event's `data` as one readable text (the agent's words: shown escaped, never interpreted)."""
    data = event.data
    if event.type == "tool_call":
        return f"{data.get('tool')} {json.dumps(data.get('arguments'), ensure_ascii=False)}"
    if event.type == "tool_result":
        return f"{data.get('tool')} → {'ok' if data.get('ok') else 'failed'}: {data.get('output', '')}"
    if event.type in ("message", "notification"):
        return str(data.get("text", ""))
    if event.type == "agent_start":
        return f"{data.get('kind')} on {data.get('model')}: {data.get('task', '')}"
    if event.type == "agent_end":
        return f"{data.get('status')}: {data.get('summary', '')}"
    if event.type == "llm_call":
        return (
            f"{data.get('model')}: {data.get('input_tokens')} in, {data.get('output_tokens')} out, "
            f"{data.get('seconds')} s, {data.get('stop_reason')}"
        )
    return json.dumps(data, ensure_ascii=False)


def event_row(index: int, event: Event) -> dict[str, Any]:
    """An event as the timeline shows it, for the server's table and the live stream alike."""
    return {
        "index": index,
        "time": time.strftime("%H:%M:%S", time.localtime(event.ts)),
        "agent": event.agent_id,
        "type": event.type,
        "text": _event_text(event)[:4000],
    }


def _record_text(data: object) -> str:
    """An overseer record's data as `key: value` lines (its judgement's reasons and the agent's words inside them
    are shown as text)."""
    if not isinstance(data, Mapping):
        return str(data)[:4000]
    lines = []
    for key, value in data.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"{key}: {shown}")
    return "\n".join(lines)[:4000]


def tool_calls(events: Sequence[Event]) -> list[tuple[str, ...]]:
    """Each tool call among `events` with its result (matched by `call_id`): agent, tool, arguments, ok or
    failed, output, seconds; a call still waiting shows `running`."""
    results = {(ev.agent_id, str(ev.data.get("call_id"))): ev.data for ev in events if ev.type == "tool_result"}
    rows: list[tuple[str, ...]] = []
    for ev in events:
        if ev.type != "tool_call":
            continue
        result = results.get((ev.agent_id, str(ev.data.get("call_id"))))
        arguments = json.dumps(ev.data.get("arguments"), ensure_ascii=False)[:2000]
        if result is None:
            rows.append((ev.agent_id, str(ev.data.get("tool")), arguments, "running", "", ""))
        else:
            outcome = "ok" if result.get("ok") else "failed"
            output = str(result.get("output", ""))[:4000]
            rows.append(
                (ev.agent_id, str(ev.data.get("tool")), arguments, outcome, output, str(result.get("seconds", "")))
            )
    return rows


def call_graph(agents: Mapping[str, AgentSummary]) -> str:
    """The agents and sub-agents the events tell of (the agent's own account), each nested under its caller, with
    status, duration and tokens reported. An agent no chain from a top agent reaches (its caller unknown, or a
    cycle of callers) is shown at the top, so every agent appears once."""
    children: dict[str | None, list[str]] = {}
    for ident, agent in agents.items():
        children.setdefault(agent.parent if agent.parent in agents else None, []).append(ident)
    shown: set[str] = set()

    def render(ident: str, depth: int) -> str:
        shown.add(ident)
        agent = agents[ident]
        took = "running" if agent.end is None else f"{agent.end - agent.start:.1f} s"
        line = (
            f'<li class="agent" data-agent="{e(ident)}"><b>{e(ident)}</b> '
            f'<span class="status {e(agent.status)}">{e(agent.status)}</span> · {e(took)} · '
            f"{e(agent.calls)} model calls · {e(agent.input_tokens + agent.output_tokens)} tokens"
        )
        below = [child for child in children.get(ident, []) if child not in shown] if depth < 30 else []
        nested = "".join(render(child, depth + 1) for child in below)
        return line + (f"<ul>{nested}</ul>" if nested else "") + "</li>"

    tops = [render(ident, 0) for ident in children.get(None, [])]
    tops += [render(ident, 0) for ident in agents if ident not in shown]
    return (
        f'<ul class="call-graph" id="call-graph">{"".join(tops)}</ul>' if tops else '<p class="note">No agents yet.</p>'
    )


def _ledger_section(
    ledger: LedgerView | None, read: EventsRead, base: str, params: Mapping[str, str], start: int, count: int
) -> str:
    if ledger is None:
        return '<p class="note">No ledger found for this attempt.</p>'
    agreement = (
        f"The ledger (the gateway's trusted record) has {ledger.total_calls} calls, "
        f"{ledger.input_tokens} input and {ledger.output_tokens} output tokens, ${ledger.cost_usd:.6f}; "
        f"the agent's events report {read.reported_calls} calls and {read.reported_input_tokens} input tokens."
    )
    differs = read.reported_calls != ledger.total_calls or read.reported_input_tokens != ledger.input_tokens
    note = (
        f'<p class="{"disagree" if differs else "note"}" id="ledger-agreement">{e(agreement)}'
        + (" They disagree: trust the ledger." if differs else "")
        + "</p>"
    )
    rows = [
        (
            e(call.id),
            e(when(call.started_at)),
            e(f"{call.alias} ({call.model})"),
            e(call.status),
            e(f"{call.input_tokens} / {call.output_tokens}"),
            e(f"{call.cost_usd:.6f}"),
            f'<pre class="text">{e(call.last_message)}</pre>',
            f'<pre class="text">{e(call.response)}</pre>',
        )
        for call in ledger.calls
    ]
    headers = ("call", "started", "alias (model)", "status", "tokens in/out", "cost $", "last message", "response")
    return (
        note
        + table(headers, rows, table_id="ledger", raw=True)
        + pager(
            base, {**params, "section": "ledger"}, start, count, ledger.total_calls, start + count < ledger.total_calls
        )
    )


def attempt_page(
    title: str,
    crumbs: Sequence[tuple[str, str]],
    read: EventsRead,
    first_index: int,
    outcome: Mapping[str, Any] | None,
    overseer: Sequence[Mapping[str, Any]],
    ledger: LedgerView | None,
    ledger_start: int,
    diff: str,
    live: bool,
    base: str,
    params: Mapping[str, str],
    count: int,
    stream: str,
    related: Sequence[tuple[str, str]] = (),
) -> str:
    events, invalid_lines, more_events = read.page, read.invalid_lines, read.more
    if outcome is None:
        verdict = "<p>Still running: no outcome yet.</p>" if live else "<p>No outcome recorded.</p>"
    else:
        score = outcome.get("score") or {}
        score = score if isinstance(score, Mapping) else {}
        facts = [
            ("status (the harness's finding)", outcome.get("status")),
            ("score", score.get("value")),
            ("scorer's details", score.get("details")),
            ("tampered", score.get("tampered")),
            ("agent's summary", outcome.get("summary")),
            ("cost $", outcome.get("cost_usd")),
            ("tokens in/out", f"{outcome.get('input_tokens')} / {outcome.get('output_tokens')}"),
            ("seconds (charged)", f"{outcome.get('seconds')} ({outcome.get('charged_s')})"),
            ("overseer", outcome.get("overseer") or "–"),
        ]
        verdict = (
            '<dl class="summary" id="verdict">'
            + "".join(f"<dt>{e(k)}</dt><dd>{e('–' if v is None else v)}</dd>" for k, v in facts)
            + "</dl>"
        )
    rows = [event_row(first_index + i, ev) for i, ev in enumerate(events)]
    timeline = table(
        ("#", "time", "agent", "type", "what"),
        ((str(r["index"]), r["time"], r["agent"], r["type"], r["text"]) for r in rows),
        table_id="events",
    )
    invalid = (
        f'<p class="disagree">{e(invalid_lines)} lines of events.jsonl were not valid events.</p>'
        if invalid_lines
        else ""
    )
    records = [(when(r.get("ts")), str(r.get("type", "")), _record_text(r.get("data"))) for r in overseer]
    oversight = (
        table(("time", "type", "what"), records, table_id="overseer")
        if records
        else '<p class="note">No overseer watched this attempt, or it recorded nothing.</p>'
    )
    tools = tool_calls(events)
    body = (
        f'<p><span class="status {"running" if live else "finished"}" id="attempt-status">'
        f"{'running' if live else 'finished'}</span></p>"
        + (
            '<p id="related">See also: '
            + ", ".join(f'<a href="{e(href)}">{e(label)}</a>' for label, href in related)
            + "</p>"
            if related
            else ""
        )
        + f"<h2>Verdict</h2>{verdict}"
        f"<h2>Call graph</h2>{call_graph(read.agents)}"
        + (
            f'<p class="note">Tokens as the agents report them; the whole attempt cost ${ledger.cost_usd:.6f} by the '
            "ledger.</p>"
            if ledger is not None
            else ""
        )
        + f"<h2>Event timeline</h2>{invalid}{timeline}"
        + pager(base, params, first_index, count, None, more_events)
        + "<h2>Tool calls</h2>"
        + (
            table(("agent", "tool", "arguments", "result", "output", "seconds"), tools, table_id="tool-calls")
            if tools
            else '<p class="note">No tool calls among these events.</p>'
        )
        + "<h2>Model calls (ledger)</h2>"
        + _ledger_section(ledger, read, base, params, ledger_start, 20)
        + f"<h2>Overseer</h2>{oversight}<h2>Final diff</h2>"
        + (highlighted_diff(diff) if diff else '<p class="note">No diff.</p>')
    )
    data = {"stream": stream, "next": str(first_index + len(events))} if live and not more_events else {}
    return page(title, body, crumbs=crumbs, data=data)


def attempts_page(
    title: str,
    source: str,
    items: Sequence[tuple[str, Mapping[str, Any] | None, bool]],
    start: int,
    count: int,
    total: int,
    root: str,
) -> str:
    """A page of attempts: each with how it ended (its `outcome.json`), or running."""
    rows = []
    for relative, outcome, running in items:
        score = (outcome or {}).get("score")
        value = score.get("value") if isinstance(score, Mapping) else None
        status = "running" if running else str((outcome or {}).get("status", "–"))
        rows.append(
            (
                f'<a href="{e(attempt_href(source, relative))}">{e(relative)}</a>',
                f'<span class="status {e(status)}">{e(status)}</span>',
                e("–" if value is None else value),
                e("–" if outcome is None else outcome.get("cost_usd", "–")),
                e("–" if outcome is None else outcome.get("seconds", "–")),
            )
        )
    body = f'<p class="note">Attempts under {e(root)}, newest first.</p>'
    headers = ("attempt", "status", "score", "cost $", "seconds")
    body += table(headers, rows, table_id="attempts", raw=True) if rows else "<p>None yet.</p>"
    body += pager(f"/{source}", {}, start, count, total, start + count < total)
    return page(title, body, crumbs=[(source, f"/{source}")])


def error_page(status: int, message: str) -> str:
    return page(f"{status}", f'<p class="error" id="error">{e(message)}</p>')
