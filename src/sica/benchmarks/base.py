"""What a benchmark is: problems (an id, the statement, a way to lay out the starting workdir) and a scorer
the harness runs after the agent has stopped, sandboxed, on a copy of the final tree (score in [0, 1])."""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sica.benchmarks.pytest_report import REPORT, START
from sica.config import BenchmarkSettings
from sica.sandbox import Limits, Sandbox, SandboxResult, SandboxSpec
from sica.sandbox.mounts import readable_by_all
from sica.sandbox.untrusted import copy_untrusted_tree


class BenchmarkError(Exception):
    """A benchmark that cannot be named, built or read (each kind's own errors derive from it); one line."""


@dataclass(frozen=True)
class Score:
    """A problem's score in [0, 1] and what the scorer saw. `tampered` names evidence that the agent's output
    attacked the scorer (a canary test reported as passing, a forged report, a link into hidden material, an
    escape attempt): such a score is 0, never cached as a score, and keeps its version from being the best."""

    value: float
    details: str
    tampered: str | None = None

    @classmethod
    def tampering(cls, evidence: str) -> Score:
        """The score of an attempt caught attacking its scorer, with the harness's evidence (one line)."""
        return cls(0.0, f"tampered: {evidence}", tampered=evidence)


@dataclass(frozen=True)
class Problem:
    """One problem. `lay_out(dest)` writes the starting tree (outside the sandbox: the benchmark is trusted);
    `score(sandbox, final_tree, answer)` runs its checks sandboxed, with hidden files the agent never saw (None:
    nothing to check, as for a user's own repository).
    `tools` is the bin folder of the problem's environment (built outside the sandbox, cached, reachable by the
    sandbox user), mounted read-only and first on PATH for the agent and the scorer; None when it needs none.
    `fingerprint` digests what decides the score besides the statement (hidden tests, targets, the scorer's
    code): a stored result is reused only while it is the same."""

    id: str
    benchmark: str
    statement: str
    lay_out: Callable[[Path], None]
    score: Callable[[Sandbox, Path, str | None], Score] | None
    tools: Path | None = None
    fingerprint: str = ""


def fingerprint(*parts: str | bytes | Path) -> str:
    """A sha256 of texts, bytes and files (a folder: every file in it, by relative path)."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            files = sorted(p for p in part.rglob("*") if p.is_file()) if part.is_dir() else [part]
            for file in files:
                digest.update(str(file.relative_to(part) if part.is_dir() else file.name).encode() + b"\0")
                digest.update(file.read_bytes() + b"\0")
        else:
            digest.update((part.encode() if isinstance(part, str) else part) + b"\0")
    return digest.hexdigest()


class DatasetError(BenchmarkError):
    """A dataset that could not be installed, downloaded or read; one line naming the problem and the fix."""


@dataclass(frozen=True)
class BenchmarkContext:
    """What building a benchmark may use: `cache_dir` for data only the harness reads (datasets, sdists,
    generated problem sets), `envs_dir` for problem environments the sandbox user must reach, `uv_bin`, the
    sandbox backend generators run foreign tests in (`sandbox`; never `none`), and `on_progress` for one-line
    progress messages while a build runs.

    Datasets loaded from the network (the `[benchmarks]` settings of the same names): `hf_endpoint`, the Hugging
    Face Hub or a mirror of it; `swebench_file` / `livecodebench_file`, local copies used instead of the Hub;
    `livecodebench_release`, which release files to load; `swebench_repo_url`, where SWE-bench repositories are
    cloned from (`{repo}` is `owner/name`); `swebench_score`, `"harness"` (the official harness, which needs a
    container engine) or `"skip"`; `swebench_python`, a Python with the `swebench` package (default: a pinned one
    run through uv)."""

    cache_dir: Path
    envs_dir: Path
    uv_bin: str
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
    def from_settings(
        cls,
        benchmarks: BenchmarkSettings,
        envs_dir: Path,
        uv_bin: str,
        *,
        sandbox: str = "bwrap",
        on_progress: Callable[[str], None] = lambda message: None,
    ) -> BenchmarkContext:
        """The context the configuration describes: `[benchmarks]`, and `envs_dir` (`[solve] envs_dir`)."""

        def expanded(path: Path | None) -> Path | None:
            return None if path is None else path.expanduser()

        return cls(
            benchmarks.cache_dir.expanduser(),
            envs_dir.expanduser(),
            uv_bin,
            sandbox=sandbox,
            on_progress=on_progress,
            hf_endpoint=benchmarks.hf_endpoint,
            swebench_file=expanded(benchmarks.swebench_file),
            livecodebench_file=expanded(benchmarks.livecodebench_file),
            livecodebench_release=benchmarks.livecodebench_release,
            swebench_repo_url=benchmarks.swebench_repo_url,
            swebench_score=benchmarks.swebench_score,
            swebench_python=expanded(benchmarks.swebench_python),
        )


def run_checks(
    sandbox: Sandbox,
    final_tree: Path,
    hidden: Path,
    command: Callable[[Path], tuple[str, ...]],
    *,
    tools: Path | None = None,
    wall_s: float = 300.0,
    stdin: bytes = b"",
    helpers: Path | None = None,
) -> SandboxResult:
    """Run `command(tree as the sandbox sees it)` in the sandbox on a fresh copy of `final_tree`, with `hidden`
    (made readable by the sandbox user) mounted read-only at its own path, `tools` (an environment's bin
    folder) first on PATH, and `stdin` on its standard input (for what the code under test must not find).
    `helpers`, a folder of the harness's own commands for the check (`sica-pytest`), is mounted read-only too and
    comes before `tools`."""
    readable_by_all(hidden)
    if helpers is not None:
        readable_by_all(helpers)
    with tempfile.TemporaryDirectory(prefix="sica-score-") as scratch:
        Path(scratch).chmod(0o755)
        copy = Path(scratch) / "tree"
        copy_untrusted_tree(final_tree, copy)
        first = [str(folder) for folder in (helpers, tools) if folder is not None]
        path = ":".join([*first, "/usr/local/bin", "/usr/bin", "/bin"])
        mounts = (hidden, *((helpers,) if helpers else ()), *((tools.parent,) if tools else ()))
        spec = SandboxSpec(
            command=(),
            workdir=copy,
            readonly=mounts,
            cwd=hidden,
            environment={"PATH": path, "PYTHONDONTWRITEBYTECODE": "1"},
            limits=Limits(wall_s=wall_s, memory_mb=2048),
            stdin=stdin,
        )
        spec = dataclasses.replace(spec, command=command(sandbox.inside(spec).workdir))
        return sandbox.run(spec)


def output_tail(text: str, limit: int = 300) -> str:
    """The end of a program's output on one line, for a one-line message or a score's details."""
    return " ".join(text.split())[-limit:] or "(no output)"


#: The most a check that did not exit 0 can score.
PARTIAL_CAP = 0.99
#: The lines of the trusted pytest runner, which the harness reads: neither a check's last line nor its details.
RUNNER_LINES = (START, REPORT)


def score_from_output(result: SandboxResult) -> Score:
    """The task-directory convention: exit 0 iff solved; an optional last line `score: X` for partial credit.
    A check that did not exit 0 has not solved the problem, whatever it printed (the code under test may print
    too): its `score:` counts only below 1, and a check stopped by a limit scores 0. The trusted runner's own
    lines are left out."""
    lines = [line for line in result.stdout.strip().splitlines() if not line.startswith(RUNNER_LINES)]
    said = [
        line
        for line in (result.stdout + "\n" + result.stderr).strip().splitlines()
        if not line.startswith(RUNNER_LINES)
    ]
    details = f"{result.describe()}; {output_tail(' '.join(said[-5:]))}"
    if result.ending != "exit":
        return Score(0.0, details)
    value = 1.0 if result.ok else 0.0
    if lines and lines[-1].startswith("score:"):
        try:
            value = min(1.0, max(0.0, float(lines[-1].removeprefix("score:"))))
        except ValueError:
            pass
    return Score(value if result.ok else min(value, PARTIAL_CAP), details)
