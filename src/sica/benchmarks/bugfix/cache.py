"""The generators' cache: each package's progress and each pair's outcome, as JSON under `cache_dir/bugfix/`, keyed
by `GENERATOR`, the table entry and the test environment, and resumed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sica.benchmarks.environments import TEST_RUNNER

#: Bump when generation changes: problem sets cached by another generator are not reused.
GENERATOR = 1


def made_by(entry: dict[str, str]) -> dict[str, Any]:
    """What a cached problem set belongs to: this generator, its table entry and this test environment only."""
    return {"generator": GENERATOR, **entry, "runner": list(TEST_RUNNER)}


def load_state(cache: Path, entry: dict[str, str]) -> dict[str, Any] | None:
    """The state cached for `entry` by this generator, if any."""
    try:
        state = json.loads(cache.read_text(encoding="utf-8"))
        return state if state.get("made_by") == made_by(entry) else None
    except (OSError, ValueError):
        return None


def save_state(cache: Path, state: dict[str, Any]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_name(f".{cache.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(state, indent=1), encoding="utf-8")
    os.replace(partial, cache)
