"""The report's PNG plots, drawn with matplotlib on its Agg canvas (no display, and no pyplot: each figure is a
plain object, so nothing global is kept between plots).

`progress.png` follows Fig. 3 of the SICA paper: utility per version with the best so far as a step line, the
mean selection (and held-out) score beside it, each point labelled with the start of its change; invalid
versions are marked on the axis. `lineage.png` is the tree of versions (`layout.py`). Texts from meta agents are
drawn as they are (`parse_math=False`: a `$` in a description is not mathtext)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from sica.report.layout import tree_layout
from sica.report.tables import RunReport, VersionRow, one_line

DPI = 110
#: "agent 3:" at the start of a description, left out of the labels (the x axis says which version it is).
AGENT_PREFIX = re.compile(r"^\s*agent[- ]?\d+\s*:\s*", re.IGNORECASE)
VALID_COLOUR = "#dbe9f6"
BEST_COLOUR = "#ffd966"
INVALID_COLOUR = "#f4cccc"
PENDING_COLOUR = "#eeeeee"


def progress_plot(report: RunReport, path: Path) -> Path:
    """Draw `progress.png` into `path`; `path`."""
    figure = Figure(figsize=(11, 5.5), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    scored = [row for row in report.versions if row.valid and row.utility is not None]
    if scored:
        numbers = [row.number for row in scored]
        utilities = [row.utility or 0.0 for row in scored]
        axes.plot(numbers, utilities, marker="o", color="tab:blue", label="utility (selection)")
        axes.step(
            numbers,
            _running_best(utilities),
            where="post",
            linestyle="--",
            color="tab:blue",
            alpha=0.6,
            label="best utility so far",
        )
        _series(
            axes,
            [(row.number, row.mean_selection.mean) for row in scored if row.mean_selection],
            "s",
            "tab:green",
            "mean selection score",
        )
        if report.holdout_benchmarks:
            _series(
                axes,
                [(row.number, row.mean_holdout.mean) for row in scored if row.mean_holdout],
                "^",
                "tab:purple",
                "mean held-out score",
            )
        for index, row in enumerate(scored):
            axes.annotate(
                one_line(AGENT_PREFIX.sub("", row.change, count=1), 28),
                (row.number, row.utility or 0.0),
                xytext=(4, 10 if index % 2 else -14),
                textcoords="offset points",
                fontsize=7,
                rotation=15,
                parse_math=False,
            )
    invalid = [row for row in report.versions if row.state == "invalid"]
    if invalid:
        axes.scatter(
            [row.number for row in invalid],
            [0.0] * len(invalid),
            marker="X",
            s=70,
            color="tab:red",
            clip_on=False,
            zorder=3,
            label="invalid version",
        )
        for row in invalid:
            axes.annotate(
                one_line(row.invalid_reason or "invalid", 24),
                (row.number, 0.0),
                xytext=(3, 8),
                textcoords="offset points",
                fontsize=7,
                color="tab:red",
                rotation=60,
                parse_math=False,
            )
    if not scored and not invalid:
        axes.text(
            0.5,
            0.5,
            "no evaluations yet",
            transform=axes.transAxes,
            ha="center",
            va="center",
            fontsize=12,
            color="grey",
        )
    last = max((row.number for row in report.versions), default=0)
    axes.set_xlim(-0.5, max(last, 1) + 0.5)
    axes.set_ylim(0.0, 1.1)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("agent version (one per iteration)")
    axes.set_ylabel("utility / score")
    axes.set_title(f"Run {report.name}: progress", parse_math=False)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper left", fontsize=8)
    figure.savefig(path, format="png")
    return path


def lineage_plot(report: RunReport, path: Path) -> Path:
    """Draw `lineage.png` into `path`; `path`."""
    places = tree_layout({row.number: row.parent for row in report.versions})
    width = max((x for x, _ in places.values()), default=0.0) + 1
    depth = max((d for _, d in places.values()), default=0) + 1
    figure = Figure(
        figsize=(min(max(5.0, 1.6 * width + 1), 40.0), min(max(3.0, 1.2 * depth + 1), 30.0)),
        dpi=DPI,
        layout="constrained",
    )
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    rows = {row.number: row for row in report.versions}
    for row in report.versions:
        if row.parent in places and row.number in places:
            (px, pd), (cx, cd) = places[row.parent], places[row.number]
            axes.plot([px, cx], [-pd, -cd], color="grey", linewidth=1, zorder=1)
    for number, (x, d) in places.items():
        row = rows[number]
        colour, edge = _node_style(row, number == report.totals.best)
        axes.text(
            x,
            -d,
            _node_label(row),
            ha="center",
            va="center",
            fontsize=8,
            zorder=2,
            parse_math=False,
            bbox={
                "boxstyle": "round,pad=0.4",
                "facecolor": colour,
                "edgecolor": "tab:red" if row.state == "invalid" else "black",
                "linestyle": edge,
            },
        )
    axes.set_xlim(-0.8, width - 0.2)
    axes.set_ylim(-depth + 0.4, 0.6)
    axes.axis("off")
    axes.set_title(f"Run {report.name}: lineage", parse_math=False)
    axes.legend(
        handles=[
            Patch(facecolor=VALID_COLOUR, edgecolor="black", label="valid"),
            Patch(facecolor=BEST_COLOUR, edgecolor="black", label="best (selection utility)"),
            Patch(facecolor=INVALID_COLOUR, edgecolor="tab:red", linestyle="--", label="invalid"),
        ],
        loc="upper right",
        fontsize=7,
    )
    figure.savefig(path, format="png")
    return path


def _running_best(values: Sequence[float]) -> list[float]:
    best, found = float("-inf"), []
    for value in values:
        best = max(best, value)
        found.append(best)
    return found


def _series(axes: Axes, points: list[tuple[int, float]], marker: str, colour: str, label: str) -> None:
    """One score series, over the versions that have that score."""
    if points:
        axes.plot(
            [x for x, _ in points], [y for _, y in points], marker=marker, linestyle=":", color=colour, label=label
        )


def _node_label(row: VersionRow) -> str:
    if row.state == "invalid":
        return f"agent-{row.number}\ninvalid"
    if row.mean_selection is None:
        return f"agent-{row.number}\n{row.state if row.state != 'valid' else 'not scored'}"
    return f"agent-{row.number}\nscore {row.mean_selection.mean:.2f}"


def _node_style(row: VersionRow, best: bool) -> tuple[str, str]:
    """Fill colour and border style of a node."""
    if row.state == "invalid":
        return INVALID_COLOUR, "--"
    if row.state != "valid":
        return PENDING_COLOUR, ":"
    return (BEST_COLOUR if best else VALID_COLOUR), "-"
