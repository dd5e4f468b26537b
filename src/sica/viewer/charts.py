"""The viewer's figures as inline SVG drawn here (no chart library): utility and score per version annotated with
each change, the lineage tree, and spend over time against the budget. Every text in them is escaped; a point
links to its version's page and carries its change in a `<title>` (the browser's hover) and a `data-change`
attribute (the page's own tooltip reads it with `textContent`)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import quote

from sica.report.layout import tree_layout
from sica.report.tables import VersionRow

WIDTH = 760
HEIGHT = 260
PAD = 40


def _x(index: int, count: int) -> float:
    return PAD + (WIDTH - 2 * PAD) * (index / max(count - 1, 1))


def _y(value: float, low: float, high: float) -> float:
    span = (high - low) or 1.0
    return HEIGHT - PAD - (HEIGHT - 2 * PAD) * ((value - low) / span)


def version_href(run: str, number: int) -> str:
    return f"/runs/{quote(run, safe='')}/versions/{number}"


def progress_chart(run: str, rows: Sequence[VersionRow]) -> str:
    """As the SICA paper's Figure 3: utility per version (line and points) with the best so far (a dashed step
    line), mean selection and held-out scores (squares, diamonds), one mark a version in order; invalid versions
    are hollow marks on the axis."""
    values = [
        v
        for row in rows
        for v in (
            row.utility,
            row.mean_selection.mean if row.mean_selection else None,
            row.mean_holdout.mean if row.mean_holdout else None,
        )
        if v is not None
    ]
    low, high = min([0.0, *values]), max([1.0, *values])
    parts = [
        f'<svg class="chart" id="progress" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        'aria-label="utility and score per version">',
        f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}"/>',
        f'<line class="axis" x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}"/>',
        f'<text class="tick" x="{PAD - 6}" y="{_y(high, low, high) + 4:.1f}" text-anchor="end">{high:.2f}</text>',
        f'<text class="tick" x="{PAD - 6}" y="{_y(low, low, high) + 4:.1f}" text-anchor="end">{low:.2f}</text>',
    ]
    line = [
        f"{_x(i, len(rows)):.1f},{_y(row.utility, low, high):.1f}"
        for i, row in enumerate(rows)
        if row.utility is not None
    ]
    if len(line) > 1:
        parts.append(f'<polyline class="utility-line" points="{" ".join(line)}"/>')
    best: float | None = None
    steps: list[str] = []
    for i, row in enumerate(rows):
        if row.valid and row.utility is not None and (best is None or row.utility > best):
            best = row.utility
            x, y = _x(i, len(rows)), _y(best, low, high)
            steps.append(f"H{x:.1f} V{y:.1f}" if steps else f"M{x:.1f},{y:.1f}")
    if steps:
        parts.append(f'<path class="best-line" d="{" ".join(steps)} H{_x(len(rows) - 1, len(rows)):.1f}"/>')
    every = max(1, -(-len(rows) // 25))  # at most about 25 numbers on the axis
    for i, row in enumerate(rows):
        x = _x(i, len(rows))
        label = f"agent-{row.number}"
        utility = "–" if row.utility is None else f"{row.utility:.3f}"
        score = "–" if row.mean_selection is None else f"{row.mean_selection.mean:.3f}"
        held_out = "" if row.mean_holdout is None else f", held-out {row.mean_holdout.mean:.3f}"
        change = f"{label}: {row.change} (utility {utility}, score {score}{held_out}, {row.state})"
        parts.append(
            f'<a class="point-link" href="{version_href(run, row.number)}">'
            f'<g class="point" data-version="{row.number}" data-label="{escape(label)}" '
            f'data-change="{escape(change)}">'
            f"<title>{escape(change)}</title>"
        )
        if row.utility is not None:
            parts.append(f'<circle class="utility" cx="{x:.1f}" cy="{_y(row.utility, low, high):.1f}" r="5"/>')
        else:
            parts.append(f'<circle class="invalid" cx="{x:.1f}" cy="{HEIGHT - PAD:.1f}" r="5"/>')
        if row.mean_selection is not None:
            y = _y(row.mean_selection.mean, low, high)
            parts.append(f'<rect class="score" x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7"/>')
        if row.mean_holdout is not None:
            y = _y(row.mean_holdout.mean, low, high)
            parts.append(
                f'<path class="holdout" d="M{x:.1f},{y - 5:.1f} L{x + 5:.1f},{y:.1f} L{x:.1f},{y + 5:.1f} '
                f'L{x - 5:.1f},{y:.1f} Z"/>'
            )
        if i % every == 0:
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{HEIGHT - PAD + 16}" text-anchor="middle">{row.number}</text>'
            )
        parts.append("</g></a>")
    parts.append(
        f'<text class="legend" x="{WIDTH - PAD}" y="{PAD - 14}" text-anchor="end">● utility ■ mean score '
        "◆ held-out score ┄ best so far ○ invalid · x: version</text></svg>"
    )
    return "".join(parts)


def lineage_tree(run: str, rows: Sequence[VersionRow], best: int | None) -> str:
    """Each version below the one it was edited from (`report.layout`), linked to its page."""
    layout = tree_layout({row.number: row.parent for row in rows})
    if not layout:
        return ""
    columns = max(x for x, _ in layout.values()) + 1
    depth = max(d for _, d in layout.values()) + 1
    width, height = max(200, int(columns * 90) + 40), int(depth * 70) + 30
    by_number = {row.number: row for row in rows}

    def place(number: int) -> tuple[float, float]:
        x, d = layout[number]
        return 20 + 45 + x * 90, 30 + d * 70

    parts = [
        f'<svg class="chart" id="lineage" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'role="img" aria-label="lineage">'
    ]
    for row in rows:
        if row.parent is not None and row.parent in layout and row.number in layout:
            (x1, y1), (x2, y2) = place(row.parent), place(row.number)
            parts.append(f'<line class="edge" x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}"/>')
    for number in layout:
        row = by_number[number]
        x, y = place(number)
        kind = "best" if number == best else ("valid" if row.valid else "invalid")
        score = "" if row.mean_selection is None else f" {row.mean_selection.mean:.2f}"
        parts.append(
            f'<a href="{version_href(run, number)}"><g class="node {kind}" data-version="{number}">'
            f"<title>{escape(f'agent-{number}: {row.change}')}</title>"
            f'<rect x="{x - 40:.0f}" y="{y - 14:.0f}" width="80" height="28" rx="6"/>'
            f'<text x="{x:.0f}" y="{y + 4:.0f}" text-anchor="middle">agent-{number}{escape(score)}</text></g></a>'
        )
    parts.append("</svg>")
    return "".join(parts)


def spend_chart(points: Sequence[tuple[float, float]], budget_usd: float | None) -> str:
    """Cumulative spend (USD) over the run's wall clock, and the budget as a line when there is one."""
    if not points:
        return '<p class="note">No model calls in the ledger yet.</p>'
    t0, t1 = points[0][0], max(points[-1][0], points[0][0] + 1e-6)
    top = max(points[-1][1], budget_usd or 0.0) or 1.0
    coords = " ".join(
        f"{PAD + (WIDTH - 2 * PAD) * (t - t0) / (t1 - t0):.1f},{_y(usd, 0.0, top):.1f}" for t, usd in points
    )
    parts = [
        f'<svg class="chart" id="spend" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        'aria-label="spend over time">',
        f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}"/>',
        f'<polyline class="spend-line" points="{coords}"/>',
        f'<text class="tick" x="{PAD}" y="{HEIGHT - PAD + 16}">0 s</text>',
        f'<text class="tick" x="{WIDTH - PAD}" y="{HEIGHT - PAD + 16}" text-anchor="end">{t1 - t0:.0f} s</text>',
        f'<text class="tick" x="{PAD + 4}" y="{_y(points[-1][1], 0.0, top) - 4:.1f}">${points[-1][1]:.4f}</text>',
    ]
    if budget_usd:
        y = _y(budget_usd, 0.0, top)
        parts.append(f'<line class="budget" x1="{PAD}" y1="{y:.1f}" x2="{WIDTH - PAD}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="tick" x="{WIDTH - PAD}" y="{y - 4:.1f}" text-anchor="end">budget ${budget_usd:.2f}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
