"""Writing a report's files: each written aside and renamed into place, so that a reader (a browser open on the
run folder, say) never sees half a file, and a report written again replaces the last one whole."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sica.report.html import render_html
from sica.report.markdown import render_markdown
from sica.report.tables import RunReport


def write_report(report: RunReport, out_dir: Path) -> list[Path]:
    """Write `report.md`, `report.html`, `progress.png` and `lineage.png` into `out_dir` (made if missing); the
    paths written."""
    from sica.report import plots  # matplotlib takes seconds to import: only writing a report pays for it

    out_dir.mkdir(parents=True, exist_ok=True)
    markdown, html = render_markdown(report), render_html(report)
    return [
        _replace(out_dir / "report.md", lambda path: path.write_text(markdown, encoding="utf-8")),
        _replace(out_dir / "report.html", lambda path: path.write_text(html, encoding="utf-8")),
        _replace(out_dir / "progress.png", lambda path: plots.progress_plot(report, path)),
        _replace(out_dir / "lineage.png", lambda path: plots.lineage_plot(report, path)),
    ]


def _replace(path: Path, write: Callable[[Path], object]) -> Path:
    """Call `write` on a temporary name beside `path`, then rename it to `path`; `path`."""
    aside = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(aside)
        aside.replace(path)
    finally:
        aside.unlink(missing_ok=True)
    return path
