"""The report as Markdown (`report.md`): summary, the plots, the versions and the meta steps."""

from __future__ import annotations

from sica.report.cells import PLOTS, TextTable, meta_step_table, summary, version_table
from sica.report.tables import RunReport


def render_markdown(report: RunReport) -> str:
    lines = [f"# Run {_cell(report.name)}", ""]
    lines += [f"- {label}: {_cell(value)}" for label, value in summary(report)]
    for file_name, caption in PLOTS:
        lines += ["", f"![{caption}]({file_name})"]
    for table in (version_table(report), meta_step_table(report.meta_steps)):
        lines += ["", *_table(table)]
    return "\n".join(lines) + "\n"


def _table(table: TextTable) -> list[str]:
    lines = [f"## {table.title}", ""]
    if not table.rows:
        return [*lines, "None yet."]
    lines += ["| " + " | ".join(_cell(header) for header in table.headers) + " |", "|" + "---|" * len(table.headers)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in table.rows]
    return [*lines, "", table.note] if table.note else lines


def _cell(text: str) -> str:
    """Text safe in a table cell: one line, pipes escaped, no raw HTML (descriptions come from meta agents)."""
    return " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")
