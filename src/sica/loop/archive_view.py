"""The archive as the meta agent sees it: a read-only folder written by the harness before each meta step.

`versions.md` lists every version (parent, state, description, mean utility and score on the selection
problems); `agent-N/` holds its `description.txt`, `CHANGELOG.md`, `diff.patch` (its change from its parent)
and `results.jsonl` (per selection problem: benchmark, status, score, cost, time, tokens). Held-out problems
and the scorers' details (which quote hidden tests) are never written: what the meta agent may learn from is
what a version did, not what the checks contain."""

from __future__ import annotations

import json
from pathlib import Path

from sica.archive import Run
from sica.config import UtilitySettings
from sica.loop.utility import version_utility
from sica.sandbox.mounts import readable_by_all

def write_archive_view(run: Run, dest: Path, weights: UtilitySettings) -> Path:
    """Write the view of `run` into `dest` (a new folder) and make it readable by the sandbox user."""
    dest.mkdir(parents=True)
    rows = ["| version | parent | state | utility | score | problems | description |", "|---|---|---|---|---|---|---|"]
    for version in run.versions():
        evaluations = run.scored(version.number)
        utility = version_utility(evaluations, weights)
        score = sum(e.score for e in evaluations) / len(evaluations) if evaluations else None
        state = version.state if version.state != "invalid" else f"invalid: {version.invalid_reason or '?'}"
        rows.append(f"| agent-{version.number} | {'' if version.parent is None else f'agent-{version.parent}'} | "
                    f"{state} | {_number(utility)} | {_number(score)} | {len(evaluations)} | "
                    f"{' '.join(version.description.split())[:200]} |")
        folder = dest / f"agent-{version.number}"
        folder.mkdir()
        (folder / "description.txt").write_text(version.description + "\n", encoding="utf-8")
        (folder / "CHANGELOG.md").write_text(version.change_log + "\n", encoding="utf-8")
        if version.commit_sha is not None:
            (folder / "diff.patch").write_text(run.diff(version.number), encoding="utf-8")
        with (folder / "results.jsonl").open("w", encoding="utf-8") as results:
            for e in evaluations:
                results.write(json.dumps({"problem": e.problem_id, "benchmark": e.benchmark, "status": e.status,
                                          "score": e.score, "cost_usd": e.cost_usd, "seconds": e.seconds,
                                          "input_tokens": e.input_tokens, "output_tokens": e.output_tokens}) + "\n")
    (dest / "versions.md").write_text("# Agent versions\n\n" + "\n".join(rows) + "\n", encoding="utf-8")
    readable_by_all(dest)
    return dest


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
