"""Dataset rows, from a file on the Hugging Face Hub (`[benchmarks] hf_endpoint`: the public Hub or a mirror) that
is downloaded once into the benchmark cache, or from a local file the user names instead. Files are read as
parquet (recognised by its magic bytes), a JSON list of rows, or JSON Lines; nothing downloaded is ever
unpickled or executed."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from sica.benchmarks.base import BenchmarkContext, DatasetError

#: The dataset repositories' branch that downloads read.
REVISION = "main"
_PARQUET_MAGIC = b"PAR1"


class _Unreadable(Exception):
    """Why a file holds no dataset rows (worded without the file's name, which the caller adds)."""


def read_rows(path: Path, setting: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The rows of a local dataset file, in order (the first `limit` of them); a bad file is a one-line error
    naming the `[benchmarks]` setting that chose it."""
    try:
        yield from _rows(path, limit)
    except (OSError, _Unreadable) as error:
        raise DatasetError(
            f"{path}: {_one_line(error)}; set [benchmarks] {setting} to a dataset file (parquet, a "
            "JSON list or JSON Lines, in the dataset's own schema)"
        ) from None


def hub_file(context: BenchmarkContext, dataset: str, filename: str, setting: str) -> Path:
    """The cached copy of `filename` in the Hub dataset `dataset` (`owner/name`), downloaded when missing. A
    download enters the cache only once its first row reads; failures are one line naming the fix: `setting`,
    the local file to use instead."""
    target = context.cache_dir / "hub" / dataset.replace("/", "__") / REVISION / filename
    if target.is_file():
        return target
    url = f"{context.hf_endpoint.rstrip('/')}/datasets/{dataset}/resolve/{REVISION}/{filename}"
    fix = (
        f"check the network and [benchmarks] hf_endpoint, or download the file yourself and set "
        f"[benchmarks] {setting} to it"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=target.parent) as scratch:
        part = Path(scratch) / target.name
        try:
            _download(url, part, context, f"{dataset}/{filename}")
        except httpx.HTTPError as error:
            raise DatasetError(
                f"downloading {url} failed ({type(error).__name__}: {_one_line(error)}); {fix}"
            ) from None
        except _Unreadable as error:
            raise DatasetError(f"downloading {url} failed ({error}); {fix}") from None
        try:
            if next(_rows(part, 1), None) is None:
                raise _Unreadable("it holds no rows")
        except _Unreadable as error:
            raise DatasetError(f"{url} did not serve the dataset file: {_one_line(error)}; {fix}") from None
        os.replace(part, target)
    return target


def _download(url: str, part: Path, context: BenchmarkContext, name: str) -> None:
    with httpx.stream("GET", url, follow_redirects=True, timeout=httpx.Timeout(30.0, read=120.0)) as response:
        if response.status_code != 200:
            raise _Unreadable(f"HTTP {response.status_code}")
        total = int(response.headers.get("content-length") or 0)
        done = 0
        with part.open("wb") as out:
            for chunk in response.iter_bytes(1 << 20):
                out.write(chunk)
                done += len(chunk)
                of_total = f" of {total / 1e6:.0f}" if total else ""
                context.on_progress(f"downloading {name}: {done / 1e6:.0f}{of_total} MB")


def _rows(path: Path, limit: int | None) -> Iterator[dict[str, Any]]:
    with path.open("rb") as data:
        head = data.read(4)
        data.seek(0)
        first = data.read(4096).lstrip()[:1]
    if head == _PARQUET_MAGIC:
        rows: Iterator[Any] = _parquet_rows(path)
    elif first == b"[":
        rows = _json_list_rows(path)
    else:
        rows = _json_lines_rows(path)
    for number, row in enumerate(rows, start=1):
        if limit is not None and number > limit:
            return
        if not isinstance(row, dict):
            raise _Unreadable(f"row {number} is a JSON {type(row).__name__}, not an object")
        yield row


def _parquet_rows(path: Path) -> Iterator[Any]:
    import pyarrow  # imported here: it is large, and only parquet files need it
    import pyarrow.parquet

    try:
        table = pyarrow.parquet.ParquetFile(path)
        for batch in table.iter_batches(batch_size=64):
            yield from batch.to_pylist()
    except pyarrow.ArrowException as error:
        raise _Unreadable(f"not a readable parquet file ({_one_line(error)})") from None


def _json_list_rows(path: Path) -> Iterator[Any]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _Unreadable(f"not valid JSON ({error})") from None
    yield from rows


def _json_lines_rows(path: Path) -> Iterator[Any]:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise _Unreadable(f"line {number} is not JSON ({error})") from None
            yield row


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]
