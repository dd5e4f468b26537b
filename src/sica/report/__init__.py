"""`sica report`: a run's versions, scores, costs and meta steps as Markdown, HTML and PNG plots."""

from sica.report.tables import RunReport, gather_report
from sica.report.writer import write_report

__all__ = ["RunReport", "gather_report", "write_report"]
