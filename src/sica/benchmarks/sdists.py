"""Source distributions of real packages, fetched once from the configured package index and unpacked into the
benchmark cache. The harness reads them; their code is never imported, built or run here.

uv resolves the pin (`uv pip compile --no-build --format pylock.toml`: from wheel metadata, never running a build
backend, which `pip download` would do for an sdist) and names the sdist's address and sha256; httpx downloads
it and the hash is checked before anything is unpacked."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path

import httpx

from sica.benchmarks.base import BenchmarkContext, BenchmarkError, output_tail


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
    tree.parent.mkdir(parents=True, exist_ok=True)
    with (tree.parent / f".{tree.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process fetches; the others then find it complete
        if not (tree / ".complete").exists():
            context.on_progress(f"fetching {requirement}")
            _fetch(requirement, context.uv_bin, tree)
    return tree


def _fetch(requirement: str, uv_bin: str, tree: Path) -> None:
    url, sha256 = _locate(requirement, uv_bin)
    with tempfile.TemporaryDirectory(prefix="sica-sdist-", dir=tree.parent) as scratch:
        archive = Path(scratch) / url.rsplit("/", 1)[-1].split("#")[0]
        _download(url, sha256, archive, requirement)
        unpacked = Path(scratch) / "unpacked"
        _unpack(archive, unpacked)
        roots = list(unpacked.iterdir())
        source = roots[0] if len(roots) == 1 and roots[0].is_dir() else unpacked
        (source / ".complete").write_text(requirement + "\n")
        shutil.rmtree(tree, ignore_errors=True)
        os.replace(source, tree)


def _locate(requirement: str, uv_bin: str) -> tuple[str, str]:
    """The sdist's address and sha256 from the index, as uv resolves the pin. The first resolution, with
    `--no-build`, proves a wheel's metadata suffices; so the second, which lists the sdist too, builds nothing."""
    for no_build in (["--no-build"], []):
        done = subprocess.run(
            [
                uv_bin,
                "pip",
                "compile",
                "-",
                "--quiet",
                "--no-deps",
                *no_build,
                "--no-header",
                "--format",
                "pylock.toml",
                "--python-version",
                "3.11",
            ],
            input=requirement,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SdistError(
                f"resolving {requirement} failed (only releases with a wheel are used, so that no "
                f"build runs): {output_tail(done.stderr)}"
            )
    for package in tomllib.loads(done.stdout).get("packages", []):
        sdist = package.get("sdist") or {}
        if sdist.get("url") and sdist.get("hashes", {}).get("sha256"):
            return sdist["url"], sdist["hashes"]["sha256"]
    raise SdistError(f"{requirement} has no source distribution on the index: pick a release that has one")


def _download(url: str, sha256: str, dest: Path, requirement: str) -> None:
    digest = hashlib.sha256()
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=60) as response:
            response.raise_for_status()
            with dest.open("wb") as out:
                for chunk in response.iter_bytes():
                    digest.update(chunk)
                    out.write(chunk)
    except httpx.HTTPError as error:
        raise SdistError(f"downloading the sdist of {requirement} failed: {error}") from None
    if digest.hexdigest() != sha256:
        raise SdistError(f"the sdist of {requirement} does not match the index's sha256: download it again")


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
