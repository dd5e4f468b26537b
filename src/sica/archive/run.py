"""A run folder: `archive.git` (the agent versions) and `run.sqlite` (what the run knows of them), kept in step.

Adding a version spans both: its row is written `pending`, then its commit is made and tagged `agent-N`, then the
row is marked `valid` or `invalid`. A crash can stop that between any two steps; `resume_cleanup` (run whenever a
writer opens the run) settles what it left:

- a pending row whose tag exists: the commit is complete, so the row is settled as its validation (recorded in the
  pending row before the commit) said. A row without a recorded validation is marked `invalid` with reason
  "interrupted" (kept in the lineage, never selected): a version never counts as valid without a recorded check.
- a pending row without its tag: the row is deleted (its number is reused; an untagged commit is garbage).
- a tag without a row (impossible in this order, but a stray tag would shadow a future version): deleted.
- a meta step still `running`: marked `interrupted`.

One process writes a run (it holds `run.lock`); readers (`read_only=True`) take no lock and change nothing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from sica.archive.errors import ArchiveError
from sica.archive.git_store import GitStore, tag_name
from sica.archive.run_db import Evaluation, OverseerEntry, ResultLike, RunDb, Version, VersionSummary
from sica.workspace.diffs import DIFF_CAP_BYTES

ARCHIVE = "archive.git"
DATABASE = "run.sqlite"
LOCK = "run.lock"
INTERRUPTED = "interrupted"


class Run:
    """An open run folder. Make one with `Run.create`, open one with `Run.open`; close it (or use `with`)."""

    def __init__(self, folder: Path, db: RunDb, git: GitStore, lock: IO[str] | None) -> None:
        self.folder = folder
        self.db = db
        self.git = git
        self._lock = lock

    @classmethod
    def create(
        cls, folder: Path, seed_dir: Path, settings_snapshot: dict[str, Any], state: Mapping[str, Any] | None = None
    ) -> Run:
        """Make the run folder with agent 0 (the seed's files, no caches) committed and tagged `agent-0`, and the
        configuration it runs under (and the keys of `state`) in the run state. Built aside and renamed into place,
        so a failed create leaves no half-made run."""
        folder = folder.absolute()  # git runs in other folders
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise ArchiveError(f"{folder} already exists: resume it with `--resume`, or choose a new run folder")
        if not (seed_dir / "pyproject.toml").is_file():
            raise ArchiveError(f"{seed_dir} has no pyproject.toml: not an agent folder; give the seed agent's folder")
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = folder.parent / f".{folder.name}.creating-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            db = RunDb(staging / DATABASE, create=True)
            try:
                git = GitStore.init(staging / ARCHIVE)
                db.set_state("config", settings_snapshot)
                for key, value in (state or {}).items():
                    db.set_state(key, value)
                db.set_state("created_at", time.time())
                db.set_state("iteration", 0)
                _add_version(db, git, None, seed_dir, _seed_description(seed_dir), _seed_change_log(seed_dir), None)
            finally:
                db.close()
            if folder.exists():
                folder.rmdir()
            staging.rename(folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return cls.open(folder)

    @classmethod
    def open(cls, folder: Path, *, read_only: bool = False) -> Run:
        """Open an existing run; a writer takes the run's lock and settles what a crash left (`resume_cleanup`)."""
        folder = folder.absolute()  # git runs in other folders
        if not folder.is_dir():
            raise ArchiveError(f"{folder} is not a run folder (no such folder): give a folder made by `sica improve`")
        db = RunDb(folder / DATABASE, read_only=read_only)
        try:
            lock = None if read_only else _take_lock(folder / LOCK)
        except BaseException:
            db.close()
            raise
        git = GitStore(folder / ARCHIVE)
        run = cls(folder, db, git, lock)
        try:
            git.check()
            if not read_only:
                run.resume_cleanup()
        except BaseException:
            run.close()
            raise
        return run

    def close(self) -> None:
        self.db.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def resume_cleanup(self) -> list[str]:
        """Settle what a crash left between SQLite and git (see the module's docstring); what was done, one line
        each."""
        done: list[str] = []
        tags = self.git.tags()
        for version in self.db.versions(state="pending"):
            if version.number in tags and version.settle_as is not None:
                self.db.mark_version(version.number, tags[version.number], version.settle_as, version.invalid_reason)
                done.append(f"agent-{version.number}: committed but never marked; marked {version.settle_as}")
            elif version.number in tags:
                self.db.mark_version(version.number, tags[version.number], "invalid", INTERRUPTED)
                done.append(f"agent-{version.number}: committed but never marked; marked invalid ({INTERRUPTED})")
            else:
                self.db.delete_version(version.number)
                done.append(f"agent-{version.number}: pending without a commit; row deleted")
        known = {version.number for version in self.db.versions()}
        for number in sorted(set(tags) - known):
            self.git.delete_tag(number)
            done.append(f"agent-{number}: tag without a row; tag deleted")
        for step in self.db.meta_steps(state="running"):
            self.db.end_meta_step(step.id, INTERRUPTED, step.cost_usd, error=INTERRUPTED)
            done.append(f"meta step {step.id} (iteration {step.iteration}): marked {INTERRUPTED}")
        return done

    def add_version(
        self, parent: int, source: Path | None, description: str, change_log: str, invalid_reason: str | None = None
    ) -> int:
        """Record the files of `source` as a new version edited from `parent`: `valid`, or `invalid` when
        `invalid_reason` is given (kept for the lineage and reports). Its number. With `source` None (files that
        could not be archived: give the reason) the version holds its parent's files. Raises
        `UntrustedTreeError` when `source` cannot be staged; no row is left then."""
        self.version(parent)
        return _add_version(self.db, self.git, parent, source, description, change_log, invalid_reason)

    def version(self, number: int) -> Version:
        """A committed version (valid or invalid), or a one-line error naming the versions there are."""
        version = self.db.version(number)
        if version is None or version.commit_sha is None:
            last = self.db.next_version_number() - 1
            raise ArchiveError(f"{tag_name(number)} is not in run {self.folder} (it has agent-0 to agent-{last})")
        return version

    def versions(self) -> list[Version]:
        return self.db.versions()

    def checkout(self, number: int, dest: Path) -> Path:
        """Write the version's files into `dest` (new or empty); `dest`."""
        self.git.checkout(str(self.version(number).commit_sha), dest)
        return dest

    def diff(self, number: int, cap_bytes: int = DIFF_CAP_BYTES) -> str:
        """The version's change from its parent, as a text patch (agent 0: all its files) of at most `cap_bytes`
        (a longer one is cut and says so in its first line)."""
        return self.git.diff(str(self.version(number).commit_sha), cap_bytes)

    def record_evaluation(
        self, version: int, result: ResultLike, repeat: int = 0, overseer_entries: Sequence[OverseerEntry] = ()
    ) -> None:
        """Store one problem's result for a version as its attempt number `repeat` at the problem (0: its first
        evaluation; see `run_db`), with the overseer's record of it: once per (problem, repeat), a later record
        replaces it."""
        self.version(version)
        self.db.record_evaluation(version, result, repeat, overseer_entries)

    def evaluations(self, version: int, part: str | None = None, *, every_repeat: bool = False) -> list[Evaluation]:
        """The version's results by problem: its first evaluation, or with `every_repeat` each problem's repeats
        after it (each `Evaluation` says its `repeat`)."""
        return self.db.evaluations(version, part, every_repeat=every_repeat)

    def scored(self, version: int, *, every_repeat: bool = False) -> list[Evaluation]:
        """The selection problems the version was scored on (held-out ones and infrastructure failures left
        out): what utility, selection and the archive view look at. Its first evaluation's, or with
        `every_repeat` every repeat's (a problem once per repeat scored, for per-problem means over repeats)."""
        return [e for e in self.db.evaluations(version, "selection", every_repeat=every_repeat) if not e.infra]

    def repeats(self, version: int) -> int:
        """How many rounds of evaluation the version has results of (0 before any): the number of its next
        repeat."""
        return self.db.repeats(version)

    def summary(self) -> list[VersionSummary]:
        """Every version's lineage, state, mean score of its first evaluation and tampered attempts of every
        repeat (`VersionSummary`)."""
        return self.db.summary()


def _add_version(
    db: RunDb,
    git: GitStore,
    parent: int | None,
    source: Path | None,
    description: str,
    change_log: str,
    invalid_reason: str | None,
) -> int:
    """pending row → commit and tag → marked (the order `Run.resume_cleanup` relies on); a commit that fails
    takes its pending row with it."""
    if source is not None and not source.is_dir():
        raise ArchiveError(f"{source} is not a folder: give the folder holding the version's files")
    if source is None and (parent is None or not invalid_reason):
        raise ArchiveError("a version without files of its own needs a parent and the reason it is invalid")
    parent_sha = git.commit_of(parent) if parent is not None else None
    number = db.insert_pending_version(
        parent, description, change_log, "invalid" if invalid_reason else "valid", invalid_reason
    )
    edited_from = f"edited from {tag_name(parent)}" if parent is not None else "the seed"
    message = f"{tag_name(number)}: {description.strip()}\n\n{edited_from}\n\n{change_log.strip()}\n"
    try:
        if source is None:
            assert parent_sha is not None
            commit = git.commit_same_tree(parent_sha, parent_sha, message)
        else:
            commit = git.commit(source, parent_sha, message)
    except BaseException:
        db.delete_version(number)
        raise
    git.tag(number, commit)
    db.mark_version(number, commit, "invalid" if invalid_reason else "valid", invalid_reason)
    return number


def _seed_description(seed_dir: Path) -> str:
    path = seed_dir / "description.txt"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else "agent 0: the seed agent"


def _seed_change_log(seed_dir: Path) -> str:
    path = seed_dir / "CHANGELOG.md"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else ""


def _take_lock(path: Path) -> IO[str]:
    """Hold the run's writer lock, or fail naming the process that holds it."""
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ArchiveError(
            f"{path.parent} is open for writing by {holder}: wait for it to end, or open the run read-only"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle
