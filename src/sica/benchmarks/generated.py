"""Generated problem sets: built once from pinned sources and kept as JSON under the benchmark cache, keyed by
the generator's version and inputs, so that later opens are fast and give the same problems in the same order."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from sica.benchmarks.base import BenchmarkContext

Row = dict[str, Any]
T = TypeVar("T")


def cached_rows(context: BenchmarkContext, benchmark: str, key: object, build: Callable[[], list[Row]]) -> list[Row]:
    """The rows `build()` makes for `key` (JSON-able: the generator's version and its pinned inputs), from
    `cache_dir/generated/` when they were built before."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = context.cache_dir / "generated" / f"{benchmark}-{digest}.json"
    try:
        return cast(list[Row], json.loads(path.read_text(encoding="utf-8"))["rows"])
    except (OSError, ValueError, KeyError):
        pass  # not built yet (or a damaged file): build it
    rows = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, suffix=".tmp", delete=False) as out:
        json.dump({"benchmark": benchmark, "key": key, "rows": rows}, out)
    os.replace(out.name, path)
    return rows


def round_robin(groups: Sequence[Sequence[T]]) -> list[T]:
    """One of each group in turn (the first of every group, then the second…), so that any prefix of a set
    built from several sources draws on all of them."""
    ordered: list[T] = []
    for rank in range(max((len(group) for group in groups), default=0)):
        ordered.extend(group[rank] for group in groups if rank < len(group))
    return ordered
