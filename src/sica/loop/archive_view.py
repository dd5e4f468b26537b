"""The archive as the meta agent sees it: a read-only folder written by the harness before each meta step.

`versions.md` lists every version (parent, state, utility, mean score overall and per benchmark on the
selection problems, their cost and time, description); `agent-N/` holds its `description.txt`,
`CHANGELOG.md`, `diff.patch` (its change from its parent), `results.jsonl` (per selection problem: benchmark,
status, score, cost, time, tokens) and `failures/<problem>.md` for each problem it did not fully solve: the
statement, how the attempt ended and what the agent did (the harness's summary of its events). What a scorer
printed is never shown: the code under test prints it too, and it can quote hidden tests (an agent version
could even print a hidden test on purpose, for the next meta agent to read). Held-out problems are never written.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

from sica.archive import Evaluation, Run
from sica.config import UtilitySettings
from sica.loop.utility import version_utility
from sica.runner.results import TAMPERED
from sica.sandbox.mounts import readable_by_all


def write_archive_view(run: Run, dest: Path, weights: UtilitySettings) -> Path:
    """Write the view of `run` into `dest` (a new folder) and make it readable by the sandbox user."""
    dest.mkdir(parents=True)
    rows = [
        "| version | parent | state | utility | score | per benchmark | problems | tampered | cost | time | "
        "description |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for version in run.versions():
        evaluations = run.scored(version.number)
        state = version.state if version.state != "invalid" else f"invalid: {version.invalid_reason or '?'}"
        rows.append(
            f"| agent-{version.number} | {'' if version.parent is None else f'agent-{version.parent}'} | "
            f"{state} | {_number(version_utility(evaluations, weights))} | {_number(_mean(evaluations))} | "
            f"{_per_benchmark(evaluations)} | {len(evaluations)} | "
            f"{sum(e.status == TAMPERED for e in evaluations)} | "
            f"${sum(e.cost_usd for e in evaluations):.4f} | {sum(e.seconds for e in evaluations):.0f} s | "
            f"{' '.join(version.description.split())[:200]} |"
        )
        folder = dest / f"agent-{version.number}"
        folder.mkdir()
        (folder / "description.txt").write_text(version.description + "\n", encoding="utf-8")
        (folder / "CHANGELOG.md").write_text(version.change_log + "\n", encoding="utf-8")
        if version.commit_sha is not None:
            shutil.copyfile(_stored_diff(run, version.number), folder / "diff.patch")
        _write_results(folder, evaluations)
    (dest / "versions.md").write_text("# Agent versions\n\n" + "\n".join(rows) + "\n", encoding="utf-8")
    readable_by_all(dest)
    return dest


def _stored_diff(run: Run, number: int) -> Path:
    """A version's change from its parent, taken once and kept in the run folder (`diffs/agent-N.patch`): a
    version never changes, so each meta step copies it instead of asking git again for every version."""
    stored = run.folder / "diffs" / f"agent-{number}.patch"
    if not stored.is_file():
        stored.parent.mkdir(exist_ok=True)
        partial = stored.with_suffix(".partial")
        partial.write_text(run.diff(number), encoding="utf-8")
        partial.replace(stored)
    return stored


def _write_results(folder: Path, evaluations: list[Evaluation]) -> None:
    """`results.jsonl`, and a file under `failures/` for each problem scored below 1 (named in its line)."""
    names: set[str] = set()
    with (folder / "results.jsonl").open("w", encoding="utf-8") as results:
        for e in evaluations:
            line = {
                "problem": e.problem_id,
                "benchmark": e.benchmark,
                "status": e.status,
                "score": e.score,
                "cost_usd": e.cost_usd,
                "seconds": e.seconds,
                "input_tokens": e.input_tokens,
                "output_tokens": e.output_tokens,
            }
            if e.score < 1.0:
                name = _file_name(e.problem_id, names)
                (folder / "failures").mkdir(exist_ok=True)
                (folder / "failures" / name).write_text(_failure(e), encoding="utf-8")
                line["failure"] = f"failures/{name}"
            results.write(json.dumps(line) + "\n")


def _failure(e: Evaluation) -> str:
    """The harness's account of a failed problem: its figures, the attempt's summary, and how it was scored."""
    head = (
        f"# {e.problem_id} ({e.benchmark})\n\nscore {e.score:.3f} · {e.status} · ${e.cost_usd:.4f} · "
        f"{e.seconds:.0f} s · {e.input_tokens} input and {e.output_tokens} output tokens\n\n"
    )
    account = e.trace_summary or "No account of this attempt was kept (it was evaluated by an older sica).\n"
    if e.status == TAMPERED:
        scored = (
            "The scorer caught this attempt tampering with its checks: it scores 0, and the version is never the best."
        )
    else:
        scored = (
            f"The hidden checks gave {e.score:.3f}. What they printed is not shown: it may quote hidden tests, "
            "and the code under test prints there too."
        )
    return f"{head}{account}\n## How it was scored\n\n{scored}\n"


def _file_name(problem_id: str, taken: set[str]) -> str:
    """A file name for the problem's failure, unique among `taken` (which it joins)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", problem_id).strip("._")[:100] or "problem"
    name = f"{stem}.md"
    if name in taken:
        name = f"{stem}-{hashlib.sha256(problem_id.encode()).hexdigest()[:8]}.md"
    taken.add(name)
    return name


def _mean(evaluations: list[Evaluation]) -> float | None:
    return sum(e.score for e in evaluations) / len(evaluations) if evaluations else None


def _per_benchmark(evaluations: list[Evaluation]) -> str:
    scores: dict[str, list[Evaluation]] = defaultdict(list)
    for e in evaluations:
        scores[e.benchmark].append(e)
    return ", ".join(f"{benchmark} {_number(_mean(group))}" for benchmark, group in sorted(scores.items()))


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
