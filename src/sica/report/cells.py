"""A report as text: its summary lines and tables as grids of strings, so that the Markdown and HTML renderings
show the same thing and differ only in markup."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sica.report.tables import ALL, STOPPED_EARLY, MetaStepRow, RunReport, RunTotals, VersionRow, one_line
from sica.runner.stats import MeanInterval

#: The plots a report shows, file name and caption.
PLOTS = (
    (
        "progress.png",
        "Utility per version (line), the best so far (steps), mean selection and held-out "
        "scores; invalid versions marked on the axis",
    ),
    ("lineage.png", "Lineage: each version below the one it was edited from, with its mean selection score"),
)

VERSIONS_NOTE = (
    "Scores: mean over the scored problems ± the half-width of its 95% confidence interval (Student's "
    "t), infrastructure failures left out. Utility: the paper's, over the selection problems, with the "
    "weights above. Cost: the version's evaluation (held-out problems included) plus the "
    "meta step that made it. Time: the problems' charged seconds, summed, plus the meta step's wall "
    "time. Evaluated: all the selection problems, or stopped early (provably worse than the best at a look). "
    "The best version: among those run on the whole mix, the highest mean utility over it (an infrastructure "
    "failure counting 0)."
)


@dataclass(frozen=True)
class TextTable:
    """A titled grid of cells, with a note under it."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


def agent(number: int | None) -> str:
    return "–" if number is None else f"agent-{number}"


def interval(value: MeanInterval | None) -> str:
    """`mean ± half-width (n=N)`, or a dash when nothing was scored."""
    return "–" if value is None else f"{value} (n={value.n})"


def number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def summary(report: RunReport) -> list[tuple[str, str]]:
    """The run's totals and set-up, label and value."""
    totals = report.totals
    best = (
        f"{agent(totals.best)} (utility {totals.best_utility:.3f})"
        if totals.best is not None and totals.best_utility is not None
        else "none scored yet"
    )
    return [
        ("Run", f"{report.name} ({report.folder})"),
        ("Created", report.created),
        ("Selection benchmarks", _listed(report.config.benchmarks)),
        ("Held-out benchmarks", _listed(report.config.holdout)),
        ("Models", report.config.models or _listed(report.config.model)),
        ("Meta agent's models", report.config.meta_models or "–"),
        ("Policy", report.numbers.policy if report.numbers else _listed(report.config.policy)),
        ("Utility weights", _weights(report)),
        *(("Numbers changed", change.line()) for change in report.numbers_changes),
        ("Iterations done", str(totals.iterations)),
        ("Versions", f"{totals.versions} ({totals.valid} valid, {totals.invalid} invalid)"),
        ("Best version", best),
        ("Accepted as better, and better on held-out problems", _accepted(totals)),
        ("Spent", f"${totals.spent_usd:.4f}"),
        ("Recorded cost (evaluations + meta steps)", f"${totals.recorded_cost_usd:.4f}"),
        ("Elapsed", f"{totals.elapsed_s:.0f} s"),
        ("Staged evaluation", _staged(totals)),
    ]


def _accepted(totals: RunTotals) -> str:
    if not totals.accepted:
        return "no version has taken the best's place yet"
    if not totals.accepted_compared:
        return f"{totals.accepted} taken, none comparable on held-out problems"
    rate = totals.accepted_better_on_holdout / totals.accepted_compared
    return (
        f"{totals.accepted_better_on_holdout} of {totals.accepted_compared} ({rate:.0%}) of the {totals.accepted}"
        " times a version took the best's place"
    )


def _weights(report: RunReport) -> str:
    """The utility's weights and caps, and whose they are: the run's, or for a run that predates stored ones the
    configuration's."""
    w = report.weights
    whose = "the run's" if report.numbers else "the configuration's: the run predates stored weights"
    return (
        f"score {w.score_weight:g}, cost {w.cost_weight:g} (cap ${w.cost_cap_usd:g}), time {w.time_weight:g} "
        f"(cap {w.time_cap_s:g} s), × {w.timeout_factor:g} on a time-out ({whose})"
    )


def _staged(totals: RunTotals) -> str:
    if not totals.full_problems:
        return "no version after agent 0 evaluated yet"
    saved = 1 - totals.staged_problems / totals.full_problems
    return (
        f"{totals.staged_problems} problems run for the valid versions after agent 0, against "
        f"{totals.full_problems} to evaluate each on the whole mix ({saved:.0%} saved)"
    )


def score_columns(report: RunReport) -> list[tuple[str, str]]:
    """(part, benchmark) of each score column: a benchmark's held-out column beside its selection one."""
    columns = []
    for name in report.selection_benchmarks:
        columns.append(("selection", name))
        if name in report.holdout_benchmarks:
            columns.append(("holdout", name))
    columns += [("holdout", name) for name in report.holdout_benchmarks if name not in report.selection_benchmarks]
    return columns


def version_table(report: RunReport) -> TextTable:
    columns = score_columns(report)
    headers = (
        "version",
        "parent",
        "change",
        *(f"{name} ({'selection' if part == 'selection' else 'held-out'})" for part, name in columns),
        "utility",
        "cost $ (eval + meta)",
        "time s (eval + meta)",
        "state",
        "evaluated",
    )
    rows = tuple(_version_cells(row, columns) for row in report.versions)
    return TextTable("Versions", headers, rows, VERSIONS_NOTE)


def meta_step_table(steps: Sequence[MetaStepRow]) -> TextTable:
    headers = ("iteration", "meta agent", "base", "state", "cost $", "time s", "made", "error", "overseer")
    rows = tuple(
        (
            str(s.iteration),
            agent(s.meta_version),
            agent(s.base_version),
            s.state,
            f"{s.cost_usd:.4f}",
            number(s.seconds, 0),
            agent(s.result_version),
            one_line(s.error or "", 160) or "–",
            one_line(s.overseer, 160) or "–",
        )
        for s in steps
    )
    return TextTable("Meta steps", headers, rows)


def _version_cells(row: VersionRow, columns: list[tuple[str, str]]) -> tuple[str, ...]:
    scores = [interval((row.selection if part == "selection" else row.holdout).get(name)) for part, name in columns]
    state = f"invalid: {row.invalid_reason or '?'}" if row.state == "invalid" else row.state
    return (
        agent(row.number),
        agent(row.parent),
        one_line(row.change, 80) or "–",
        *scores,
        number(row.utility),
        f"{row.cost_usd:.4f} ({row.eval_cost_usd:.4f} + {row.meta_cost_usd:.4f})",
        f"{row.seconds:.0f} ({row.eval_seconds:.0f} + {row.meta_seconds:.0f})",
        state,
        _evaluated(row),
    )


def _evaluated(row: VersionRow) -> str:
    if row.evaluated == ALL:
        shown = f"all ({row.selection_problems} problems)"
    elif row.evaluated == STOPPED_EARLY:
        shown = f"stopped early ({row.selection_problems} of {row.mix_size})"
    else:
        shown = row.evaluated
    if row.infra_failures:
        shown += f"; {row.infra_failures} infra failure{'s' if row.infra_failures > 1 else ''}"
    if row.tampered:
        shown += f"; {row.tampered} tampered (never the best)"
    if row.marked_for_review:
        shown += f"; {row.marked_for_review} marked for review by the overseer"
    return shown


def _listed(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) or "–"
    return "–" if value in (None, "") else str(value)
