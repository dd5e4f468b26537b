"""The report as one HTML page (`report.html`), the same content as the Markdown, every text escaped (descriptions
and errors come from meta agents)."""

from __future__ import annotations

from html import escape

from sica.report.cells import PLOTS, TextTable, meta_step_table, summary, version_table
from sica.report.tables import RunReport

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
tr.invalid td { color: #a33; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: bold; }
dd { margin: 0; }
figure { margin: 1em 0; }
img { max-width: 100%; }
p.note { color: #555; font-size: 0.85em; max-width: 60em; }
"""


def render_html(report: RunReport) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>Run {escape(report.name)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>Run {escape(report.name)}</h1>",
        "<dl>",
    ]
    parts += [f"<dt>{escape(label)}</dt><dd>{escape(value)}</dd>" for label, value in summary(report)]
    parts.append("</dl>")
    parts += [
        f'<figure><img src="{name}" alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'
        for name, caption in PLOTS
    ]
    invalid = [row.state == "invalid" for row in report.versions]
    parts += _table(version_table(report), invalid)
    parts += _table(meta_step_table(report.meta_steps), [False] * len(report.meta_steps))
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _table(table: TextTable, invalid: list[bool]) -> list[str]:
    parts = [f"<h2>{escape(table.title)}</h2>"]
    if not table.rows:
        return [*parts, "<p>None yet.</p>"]
    parts += [
        "<table>",
        "<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in table.headers) + "</tr></thead>",
        "<tbody>",
    ]
    for row, marked in zip(table.rows, invalid, strict=True):
        opening = '<tr class="invalid">' if marked else "<tr>"
        parts.append(opening + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>")
    parts += ["</tbody>", "</table>"]
    return [*parts, f'<p class="note">{escape(table.note)}</p>'] if table.note else parts
