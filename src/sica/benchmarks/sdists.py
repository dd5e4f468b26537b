"""Source distributions of real packages, fetched once from the configured package index and unpacked into the
benchmark cache. The harness reads them; their code is never imported or built here."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path

from sica.benchmarks.base import BenchmarkContext, BenchmarkError

#: pip is used only to download (its index configuration is the user's); run through `uv tool run`, pinned.
PIP = "pip==25.3"


class SdistError(BenchmarkError):
    """An sdist that could not be fetched or unpacked; one line."""


def fetch_sdist(requirement: str, context: BenchmarkContext) -> Path:
    """The unpacked source tree of `requirement` (`name==version`), cached under `cache_dir/sdists/`."""
    name, _, version = requirement.partition("==")
    if not name or not version:
        raise SdistError(f"'{requirement}' must pin one version: name==version")
    tree = context.cache_dir / "sdists" / f"{name}-{version}"
    if (tree / ".complete").exists():
        return tree
    context.on_progress(f"fetching {requirement}")
    tree.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sica-sdist-", dir=tree.parent) as scratch:
        done = subprocess.run([context.uv_bin, "tool", "run", "--quiet", "--from", PIP, "pip", "download",
                               "--quiet", "--no-deps", "--no-binary", ":all:", "--dest", scratch, requirement],
                              capture_output=True, text=True)
        archives = [p for p in Path(scratch).iterdir() if p.name.endswith((".tar.gz", ".zip", ".tgz"))]
        if done.returncode != 0 or len(archives) != 1:
            detail = " ".join((done.stderr or done.stdout).split())[-300:]
            raise SdistError(f"downloading the sdist of {requirement} failed: {detail or 'no archive'}")
        unpacked = Path(scratch) / "unpacked"
        _unpack(archives[0], unpacked)
        roots = list(unpacked.iterdir())
        source = roots[0] if len(roots) == 1 and roots[0].is_dir() else unpacked
        (source / ".complete").write_text(requirement + "\n")
        shutil.rmtree(tree, ignore_errors=True)
        os.replace(source, tree)
    return tree


def _unpack(archive: Path, dest: Path) -> None:
    """Unpack without following links out of `dest` (tar's `data` filter; zip members are checked)."""
    dest.mkdir()
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.namelist():
                if not (dest / member).resolve().is_relative_to(dest.resolve()):
                    raise SdistError(f"{archive.name}: member {member} points outside the archive")
            bundle.extractall(dest)
        return
    with tarfile.open(archive) as bundle:
        bundle.extractall(dest, filter="data")
