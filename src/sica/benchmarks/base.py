"""What a benchmark is: problems (an id, the statement, a way to lay out the starting workdir) and a scorer
the harness runs after the agent has stopped, sandboxed, on a copy of the final tree (score in [0, 1])."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sica.sandbox import Limits, Sandbox, SandboxResult, SandboxSpec


@dataclass(frozen=True)
class Score:
    """A problem's score in [0, 1] and what the scorer saw."""

    value: float
    details: str


@dataclass(frozen=True)
class Problem:
    """One problem. `lay_out(dest)` writes the starting tree (outside the sandbox: the benchmark is trusted);
    `score(sandbox, final_tree, answer)` runs its checks sandboxed, with hidden files the agent never saw.
    `tools` is the bin folder of the problem's environment (built outside the sandbox, cached, reachable by the
    sandbox user), mounted read-only and first on PATH for the agent and the scorer; None when it needs none."""

    id: str
    benchmark: str
    statement: str
    lay_out: Callable[[Path], None]
    score: Callable[[Sandbox, Path, str | None], Score]
    tools: Path | None = None


@dataclass(frozen=True)
class BenchmarkContext:
    """What building a benchmark may use: `cache_dir` for data only the harness reads (datasets, sdists,
    generated problem sets), `envs_dir` for problem environments the sandbox user must reach, `uv_bin`, the
    agent environment's bin folder for task folders' checks (`tools`), the sandbox backend generators run
    foreign tests in (`sandbox`; never `none`), and `on_progress` for one-line progress messages while a build
    runs."""

    cache_dir: Path
    envs_dir: Path
    uv_bin: str
    tools: Path | None = None
    sandbox: str = "bwrap"
    on_progress: Callable[[str], None] = lambda message: None


class Benchmark(Protocol):
    name: str

    def problems(self) -> list[Problem]: ...


def run_checks(sandbox: Sandbox, final_tree: Path, hidden: Path, command: Callable[[Path], tuple[str, ...]], *,
               tools: Path | None = None, wall_s: float = 300.0) -> SandboxResult:
    """Run `command(tree as the sandbox sees it)` in the sandbox on a fresh copy of `final_tree`, with `hidden`
    mounted read-only at its own path and `tools` (an environment's bin folder) first on PATH."""
    with tempfile.TemporaryDirectory(prefix="sica-score-") as scratch:
        Path(scratch).chmod(0o755)
        copy = Path(scratch) / "tree"
        shutil.copytree(final_tree, copy, symlinks=True)
        path = ":".join([*([str(tools)] if tools else []), "/usr/local/bin", "/usr/bin", "/bin"])
        spec = SandboxSpec(command=(), workdir=copy, readonly=(hidden, *((tools.parent,) if tools else ())),
                           cwd=hidden, environment={"PATH": path, "PYTHONDONTWRITEBYTECODE": "1"},
                           limits=Limits(wall_s=wall_s, memory_mb=2048))
        spec = dataclasses.replace(spec, command=command(sandbox.inside(spec).workdir))
        return sandbox.run(spec)


def score_from_output(result: SandboxResult) -> Score:
    """The task-directory convention: exit 0 iff solved; an optional last line `score: X` for partial credit."""
    lines = result.stdout.strip().splitlines()
    tail = " ".join(" ".join(lines[-5:]).split())[-300:]
    if lines and lines[-1].startswith("score:"):
        try:
            value = min(1.0, max(0.0, float(lines[-1].removeprefix("score:"))))
        except ValueError:
            value = 1.0 if result.ok else 0.0
        return Score(value, f"{result.describe()}; {tail}")
    return Score(1.0 if result.ok else 0.0, f"{result.describe()}; {tail}")
