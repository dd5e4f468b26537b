"""What a benchmark is: problems (an id, the statement, a way to lay out the starting workdir) and a scorer
the harness runs after the agent has stopped, sandboxed, on a copy of the final tree (score in [0, 1])."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from sica.config import Settings
from sica.sandbox import Limits, Sandbox, SandboxResult, SandboxSpec


class BenchmarkError(Exception):
    """A benchmark that cannot be named, built or read (each kind's own errors derive from it); one line."""


@dataclass(frozen=True)
class Score:
    """A problem's score in [0, 1] and what the scorer saw."""

    value: float
    details: str


@dataclass(frozen=True)
class Problem:
    """One problem. `lay_out(dest)` writes the starting tree (outside the sandbox: the benchmark is trusted);
    `score(sandbox, final_tree, answer)` runs its checks sandboxed, with hidden files the agent never saw (None:
    nothing to check, as for a user's own repository).
    `tools` is the bin folder of the problem's environment (built outside the sandbox, cached, reachable by the
    sandbox user), mounted read-only and first on PATH for the agent and the scorer; None when it needs none."""

    id: str
    benchmark: str
    statement: str
    lay_out: Callable[[Path], None]
    score: Callable[[Sandbox, Path, str | None], Score] | None
    tools: Path | None = None


class DatasetError(BenchmarkError):
    """A dataset that could not be installed, downloaded or read; one line naming the problem and the fix."""


@dataclass(frozen=True)
class BenchmarkContext:
    """What building a benchmark may use: `cache_dir` for data only the harness reads (datasets, sdists,
    generated problem sets), `envs_dir` for problem environments the sandbox user must reach, `uv_bin`, the
    agent environment's bin folder for task folders' checks (`tools`), the sandbox backend generators run
    foreign tests in (`sandbox`; never `none`), and `on_progress` for one-line progress messages while a build
    runs.

    Datasets loaded from the network (the `[benchmarks]` settings of the same names): `hf_endpoint`, the Hugging
    Face Hub or a mirror of it; `swebench_file` / `livecodebench_file`, local copies used instead of the Hub;
    `livecodebench_release`, which release files to load; `swebench_repo_url`, where SWE-bench repositories are
    cloned from (`{repo}` is `owner/name`); `swebench_score`, `"harness"` (the official harness, which needs a
    container engine) or `"skip"`; `swebench_python`, a Python with the `swebench` package (default: a pinned one
    run through uv)."""

    cache_dir: Path
    envs_dir: Path
    uv_bin: str
    tools: Path | None = None
    sandbox: str = "bwrap"
    on_progress: Callable[[str], None] = lambda message: None
    hf_endpoint: str = "https://huggingface.co"
    swebench_file: Path | None = None
    livecodebench_file: Path | None = None
    livecodebench_release: str = "release_v6"
    swebench_repo_url: str = "https://github.com/{repo}.git"
    swebench_score: Literal["harness", "skip"] = "harness"
    swebench_python: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings, uv_bin: str, *, tools: Path | None = None, sandbox: str = "bwrap",
                      on_progress: Callable[[str], None] = lambda message: None) -> BenchmarkContext:
        """The context the configuration describes (`[benchmarks]`, and `[solve] envs_dir`)."""
        b = settings.benchmarks

        def expanded(path: Path | None) -> Path | None:
            return None if path is None else path.expanduser()

        return cls(b.cache_dir.expanduser(), settings.solve.envs_dir.expanduser(), uv_bin, tools=tools,
                   sandbox=sandbox, on_progress=on_progress, hf_endpoint=b.hf_endpoint,
                   swebench_file=expanded(b.swebench_file), livecodebench_file=expanded(b.livecodebench_file),
                   livecodebench_release=b.livecodebench_release, swebench_repo_url=b.swebench_repo_url,
                   swebench_score=b.swebench_score, swebench_python=expanded(b.swebench_python))


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
    said = (result.stdout + "\n" + result.stderr).strip().splitlines()
    tail = " ".join(" ".join(said[-5:]).split())[-300:]
    if lines and lines[-1].startswith("score:"):
        try:
            value = min(1.0, max(0.0, float(lines[-1].removeprefix("score:"))))
        except ValueError:
            value = 1.0 if result.ok else 0.0
        return Score(value, f"{result.describe()}; {tail}")
    return Score(1.0 if result.ok else 0.0, f"{result.describe()}; {tail}")
