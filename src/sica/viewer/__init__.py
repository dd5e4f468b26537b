"""`sica view`: a local web viewer of runs, versions and attempts, read-only and live (`app.create_app`)."""

from sica.viewer.app import create_app
from sica.viewer.attempts import Sources

__all__ = ["Sources", "create_app"]
