"""`swebench_verified`: SWE-bench Verified's 500 issues from real Python repositories
(`princeton-nlp/SWE-bench_Verified` on the Hub, or a local copy at `[benchmarks] swebench_file`).

Each problem is laid out as the repository's files at the issue's base commit, checked out of a bare clone cached
per repository (`[benchmarks] swebench_repo_url`, GitHub by default): no history, so neither the fix nor later
commits enter the tree; the gold patch and the hidden tests never do. The final tree's diff against the base
commit is scored by SWE-bench's official harness (`swebench.harness.run_evaluation`), which runs the tests in the
instance's container: it needs a Docker-compatible container engine, checked when the benchmark is opened, unless
`[benchmarks] swebench_score = "skip"` (problems then score 0, saying they were not scored)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sica.benchmarks.base import (
    BenchmarkContext,
    BenchmarkError,
    DatasetError,
    Problem,
    Score,
    fingerprint,
    output_tail,
)
from sica.benchmarks.hub import hub_file, read_rows
from sica.sandbox import Sandbox
from sica.workspace.git import GitError, git, init_bare
from sica.workspace.trees import SKIPPED_FOLDERS

DATASET = "princeton-nlp/SWE-bench_Verified"
DATA_FILE = "data/test-00000-of-00001.parquet"
SETTING = "swebench_file"
#: The harness, run through `uv tool run` when `[benchmarks] swebench_python` names no Python that has it.
HARNESS_REQUIREMENT = "swebench==5.0.2"
#: The fields the harness needs from a row (the statement needs only a few of them).
FIELDS = (
    "instance_id",
    "repo",
    "base_commit",
    "problem_statement",
    "patch",
    "test_patch",
    "FAIL_TO_PASS",
    "PASS_TO_PASS",
    "version",
    "environment_setup_commit",
)
_REPO = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*/[A-Za-z0-9_][A-Za-z0-9_.-]*")  # no leading '-': never an option
_INSTANCE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_COMMIT = re.compile(r"[0-9a-f]{40}")
#: Imports the harness and asks the engine's API for a ping: what `run_evaluation` needs to work at all.
_PROBE = "import docker, swebench.harness.run_evaluation; docker.from_env().ping()"


class SwebenchError(BenchmarkError):
    """A repository that cannot be laid out, or a harness that cannot score; one line naming the fix."""


def open_swebench(context: BenchmarkContext, count: int | None) -> list[Problem]:
    """The first `count` instances (all when None). Opening fails early, with the reason, when scoring cannot
    work here, unless scoring is switched off."""
    if context.swebench_file is not None:
        rows = list(read_rows(context.swebench_file, SETTING, count))
    else:
        rows = list(read_rows(hub_file(context, DATASET, DATA_FILE, SETTING), SETTING, count))
    if not rows:
        raise DatasetError(
            f"SWE-bench Verified has no instances to load: the file holds no rows; set [benchmarks] "
            f"{SETTING} to a file in the dataset's schema"
        )
    instances = [_checked(row, number) for number, row in enumerate(rows, start=1)]
    harness = None
    if context.swebench_score == "harness":
        harness = SwebenchHarness.for_context(context)
        context.on_progress("checking the SWE-bench harness and the container engine")
        harness.check()
    mirrors = RepoMirrors(context.cache_dir / "swebench" / "repos", context.swebench_repo_url, context.on_progress)
    runs_dir = context.cache_dir / "swebench" / "runs"
    return [_problem(row, mirrors, harness, runs_dir) for row in instances]


def _checked(row: dict[str, Any], number: int) -> dict[str, Any]:
    """A row with every field the harness needs, and names that are safe in paths and URLs."""
    missing = [field for field in FIELDS if not isinstance(row.get(field), str)]
    name = row.get("instance_id") if isinstance(row.get("instance_id"), str) else f"row {number}"
    fix = f"set [benchmarks] {SETTING} to a file in SWE-bench's schema"
    if missing:
        raise DatasetError(f"SWE-bench instance {name} is malformed: no text in {', '.join(missing)}; {fix}")
    for field, pattern in (("instance_id", _INSTANCE_ID), ("repo", _REPO), ("base_commit", _COMMIT)):
        if not pattern.fullmatch(row[field]) or ".." in row[field]:
            raise DatasetError(
                f"SWE-bench instance {name} is malformed: {field} '{row[field][:80]}' is not a valid one; {fix}"
            )
    return row


def _problem(row: dict[str, Any], mirrors: RepoMirrors, harness: SwebenchHarness | None, runs_dir: Path) -> Problem:
    instance_id, repo, commit = row["instance_id"], row["repo"], row["base_commit"]

    def lay_out(dest: Path) -> None:
        mirrors.check_out(repo, commit, dest)

    def score(sandbox: Sandbox, final_tree: Path, answer: str | None) -> Score:
        if harness is None:
            return Score(
                0.0, 'not scored: [benchmarks] swebench_score = "skip" (the SWE-bench harness needs a container engine)'
            )
        diff = mirrors.diff(repo, commit, final_tree)
        if not diff.strip():
            return Score(0.0, "not resolved: the repository was not changed")
        return harness.score(row, diff, runs_dir)

    statement = (
        f"{row['problem_statement'].strip()}\n\n---\n\nThe working directory holds the repository {repo} "
        "at the commit this issue was reported against. Resolve the issue by changing the repository's "
        "source code. Hidden tests written for the fix then run on your changes in the project's own "
        "environment (SWE-bench's harness); changes to the test files the hidden tests touch are reset "
        "first.\n"
    )
    hidden = json.dumps({key: row[key] for key in ("test_patch", "FAIL_TO_PASS", "PASS_TO_PASS")}, sort_keys=True)
    return Problem(
        f"swebench_verified/{instance_id}",
        "swebench_verified",
        statement,
        lay_out,
        score,
        fingerprint=fingerprint(hidden, HARNESS_REQUIREMENT),
    )


class RepoMirrors:
    """Bare clones of the benchmark's repositories under `root`, one per repository (its problems share it),
    cloned from `url_template` with `{repo}` = `owner/name`. Trees are checked out of them without history, and
    final trees are diffed against them. git runs with hooks, filters and user configuration off whenever it
    reads a tree."""

    def __init__(self, root: Path, url_template: str, on_progress: Callable[[str], None]) -> None:
        self.root = root
        self.url_template = url_template
        self.on_progress = on_progress

    def check_out(self, repo: str, commit: str, dest: Path) -> None:
        """Write the files of `repo` at `commit` into `dest` (no .git)."""
        mirror = self._mirror(repo, commit)
        with tempfile.TemporaryDirectory(prefix="sica-checkout-") as scratch:
            index = Path(scratch) / "index"
            _git(mirror, "read-tree", commit, work_tree=dest, index=index)
            _git(mirror, "checkout-index", "--all", "--force", work_tree=dest, index=index)

    def diff(self, repo: str, commit: str, tree: Path) -> str:
        """The binary-safe diff from `repo` at `commit` to `tree`, taken in a scratch repository that borrows the
        clone's objects (what the agent wrote never enters the cached clone)."""
        mirror = self._mirror(repo, commit)
        with tempfile.TemporaryDirectory(prefix="sica-diff-") as scratch:
            git_dir = Path(scratch) / "scratch.git"
            try:
                init_bare(git_dir, SKIPPED_FOLDERS)
            except GitError as error:
                raise SwebenchError(f"git init in {git_dir.name} failed: {output_tail(error.stderr)}") from None
            (git_dir / "objects" / "info" / "alternates").write_text(f"{(mirror / 'objects').resolve()}\n")
            index = Path(scratch) / "index"
            _git(git_dir, "read-tree", commit, work_tree=tree, index=index)
            _git(git_dir, "add", "--all", work_tree=tree, index=index)
            return _git(
                git_dir,
                "diff",
                "--cached",
                "--binary",
                "--no-ext-diff",
                "--no-textconv",
                commit,
                work_tree=tree,
                index=index,
            )

    def _mirror(self, repo: str, commit: str) -> Path:
        """The bare clone of `repo`, cloned or fetched (under a lock) until it has `commit`."""
        mirror = self.root / f"{repo.replace('/', '__')}.git"
        if mirror.is_dir() and _has_commit(mirror, commit):
            return mirror
        self.root.mkdir(parents=True, exist_ok=True)
        url = self.url_template.format(repo=repo)
        fix = (
            "SWE-bench Verified lays out each problem from its repository: run where it can be cloned, or set "
            '[benchmarks] swebench_repo_url to local clones (e.g. "/srv/git/{repo}.git")'
        )
        with (self.root / f"{mirror.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not mirror.is_dir():
                self.on_progress(f"cloning {url}")
                part = self.root / f".{mirror.name}.{os.getpid()}"
                shutil.rmtree(part, ignore_errors=True)
                done = git("clone", "--quiet", "--bare", "--", url, str(part), remote=True, check=False)
                if done.returncode != 0:
                    shutil.rmtree(part, ignore_errors=True)
                    raise SwebenchError(f"cloning {url} failed: {output_tail(done.stderr)}; {fix}")
                os.replace(part, mirror)
            if not _has_commit(mirror, commit):
                self.on_progress(f"fetching {repo} to find {commit[:12]}")
                for refs in (("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"), (commit,)):
                    git("fetch", "--quiet", "--", url, *refs, git_dir=mirror, remote=True, check=False)
                    if _has_commit(mirror, commit):
                        break
                else:
                    raise SwebenchError(
                        f"{url} has no commit {commit}: check [benchmarks] swebench_repo_url points at {repo}"
                    )
        return mirror


def _git(git_dir: Path, *args: str, work_tree: Path, index: Path) -> str:
    """`workspace.git.git` on a tree through a private index; a failure is a `SwebenchError`."""
    done = git(*args, git_dir=git_dir, work_tree=work_tree, index=index, check=False)
    if done.returncode != 0:
        raise SwebenchError(f"git {args[0]} in {git_dir.name} failed: {output_tail(done.stderr)}")
    return done.stdout


def _has_commit(mirror: Path, commit: str) -> bool:
    return git("cat-file", "-e", f"{commit}^{{commit}}", git_dir=mirror, check=False).returncode == 0


@dataclass(frozen=True)
class SwebenchHarness:
    """SWE-bench's official harness, run outside the sandbox (it isolates the tests in the instance's container)
    by `python` (the command that starts a Python with the `swebench` package), one instance per run, in a
    folder of its own whose logs are kept."""

    python: tuple[str, ...]
    timeout_s: int = 1800
    model_name: str = "sica"

    @classmethod
    def for_context(cls, context: BenchmarkContext) -> SwebenchHarness:
        if context.swebench_python is not None:
            return cls((str(context.swebench_python),))
        return cls((context.uv_bin, "tool", "run", "--quiet", "--from", HARNESS_REQUIREMENT, "python"))

    def check(self) -> None:
        """Raise a one-line `SwebenchError` unless a container engine is on PATH and the harness reaches its API."""
        fix = (
            "start Docker (or podman's Docker-compatible API service, with DOCKER_HOST pointing at it), or set "
            '[benchmarks] swebench_score = "skip" to run SWE-bench Verified unscored'
        )
        if not (shutil.which("docker") or shutil.which("podman")):
            raise SwebenchError(
                f"SWE-bench Verified cannot be scored here: no container engine (docker or podman) on PATH; {fix}"
            )
        try:
            done = subprocess.run([*self.python, "-c", _PROBE], capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SwebenchError(
                f"SWE-bench Verified cannot be scored here: starting the harness failed ({error}); {fix}"
            ) from None
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines() or ["the harness's probe failed silently"]
            raise SwebenchError(f"SWE-bench Verified cannot be scored here: {output_tail(lines[-1])}; {fix}")

    def command(self, dataset: Path, predictions: Path, instance_id: str, run_id: str) -> list[str]:
        """The harness's command line for one instance."""
        return [
            *self.python,
            "-m",
            "swebench.harness.run_evaluation",
            "--dataset_name",
            str(dataset),
            "--split",
            "test",
            "--instance_ids",
            instance_id,
            "--predictions_path",
            str(predictions),
            "--max_workers",
            "1",
            "--timeout",
            str(self.timeout_s),
            "--run_id",
            run_id,
        ]

    def prediction(self, instance_id: str, diff: str) -> dict[str, str]:
        """One line of the predictions file."""
        return {"instance_id": instance_id, "model_name_or_path": self.model_name, "model_patch": diff}

    def report_file(self, run_dir: Path, run_id: str, instance_id: str) -> Path:
        """Where the harness writes an instance's report, relative to the folder it runs in."""
        return (
            run_dir
            / "logs"
            / "run_evaluation"
            / run_id
            / self.model_name.replace("/", "__")
            / instance_id
            / "report.json"
        )

    def score(self, row: dict[str, Any], diff: str, runs_dir: Path) -> Score:
        """Run the harness on `diff` for the instance `row` (given to it as a one-row dataset file, so it needs
        no download) and read its verdict."""
        instance_id = row["instance_id"]
        run_id = f"sica-{instance_id}-{secrets.token_hex(4)}"
        run_dir = runs_dir / run_id
        run_dir.mkdir(parents=True)
        dataset, predictions = run_dir / "dataset.json", run_dir / "predictions.jsonl"
        dataset.write_text(json.dumps([row], default=str), encoding="utf-8")
        predictions.write_text(json.dumps(self.prediction(instance_id, diff)) + "\n", encoding="utf-8")
        try:
            done = subprocess.run(
                self.command(dataset, predictions, instance_id, run_id),
                cwd=run_dir,
                capture_output=True,
                text=True,
                timeout=self.timeout_s + 3600,
            )
        except subprocess.TimeoutExpired:
            return Score(0.0, f"harness error: no verdict within {self.timeout_s + 3600} s (logs in {run_dir})")
        (run_dir / "harness.log").write_text(done.stdout + done.stderr, encoding="utf-8")
        verdict = self.read_report(self.report_file(run_dir, run_id, instance_id), instance_id)
        if verdict is None:
            return Score(
                0.0,
                f"harness error: no report (it exited with code {done.returncode}: "
                f"{output_tail(done.stdout + done.stderr)}; logs in {run_dir})",
            )
        return verdict

    @staticmethod
    def read_report(report: Path, instance_id: str) -> Score | None:
        """The verdict in an instance's report.json (1 iff resolved, with the tests' tallies); None without one."""
        try:
            verdict = json.loads(report.read_text(encoding="utf-8"))[instance_id]
            resolved = bool(verdict["resolved"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        tallies = []
        for kind, status in (verdict.get("tests_status") or {}).items():
            if kind in ("FAIL_TO_PASS", "PASS_TO_PASS"):
                passed, failed = len(status.get("success", [])), len(status.get("failure", []))
                tallies.append(f"{kind} {passed}/{passed + failed}")
        return Score(
            1.0 if resolved else 0.0,
            f"{'resolved' if resolved else 'not resolved'}" + (f" ({', '.join(tallies)})" if tallies else ""),
        )
