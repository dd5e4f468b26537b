"""`archive.git`: a bare repository with one commit per agent version, tagged `agent-N`.

A version's commit has as parent the commit of the version it was edited from (agent 0 is the root). Every git
call goes through `workspace.git.git` (hooks, fsmonitor, external diff drivers, textconv and the tree's attributes
disabled, no user or system config), and trees are staged through a private index file by `diffs.stage_tree`
(nested repositories, special files and what is past the untrusted limits left out), so nothing in an agent's
files runs on the host or breaks a commit. Diffs are written to a file and read back up to a cap.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sica.archive.errors import ArchiveError
from sica.workspace.diffs import DIFF_CAP_BYTES, read_capped_diff, stage_tree
from sica.workspace.git import GitError, git, init_bare, neutralize_attributes
from sica.workspace.trees import SKIPPED_FOLDERS

_TAG = re.compile(r"agent-(\d+)")


def tag_name(version: int) -> str:
    return f"agent-{version}"


class GitStore:
    """The archive's bare repository: commit a folder as a version, tag it, read it back."""

    def __init__(self, git_dir: Path) -> None:
        self.git_dir = git_dir

    @classmethod
    def init(cls, git_dir: Path) -> GitStore:
        """Make an empty bare repository that ignores version control folders, environments and caches."""
        try:
            init_bare(git_dir, [*SKIPPED_FOLDERS, "*.pyc"])
        except GitError as error:
            raise ArchiveError(f"cannot make {git_dir}: {' '.join(error.stderr.split())[-300:]}") from None
        neutralize_attributes(git_dir)
        return cls(git_dir)

    def check(self) -> None:
        """Fail with one line unless this is a repository holding agent 0."""
        if not (self.git_dir / "HEAD").is_file():
            raise ArchiveError(
                f"{self.git_dir} is missing: the run's archive is gone; restore the folder from a "
                "backup or start a new run"
            )
        try:
            self.commit_of(0)
        except ArchiveError:
            raise ArchiveError(
                f"{self.git_dir} holds no agent-0: the archive is damaged; restore it from a backup or start a new run"
            ) from None

    def _run(
        self, *args: str, workdir: Path | None = None, index: Path | None = None, out: IO[bytes] | None = None
    ) -> str:
        try:
            return git(*args, git_dir=self.git_dir, work_tree=workdir or self.git_dir, index=index, out=out).stdout
        except GitError as error:
            raise ArchiveError(f"archive {self.git_dir}: {error}") from None

    @contextmanager
    def _private_index(self) -> Iterator[Path]:
        """An index file of our own in the repository, removed afterwards (a bare repository has none)."""
        index = self.git_dir / f"index-{uuid.uuid4().hex}"
        try:
            yield index
        finally:
            index.unlink(missing_ok=True)

    def commit(self, source: Path, parent: str | None, message: str) -> str:
        """Commit the files of `source` (no caches or environments, nothing `stage_tree` leaves out) with
        `parent` as parent; the commit's sha. Raises `UntrustedTreeError` when the tree cannot be staged."""
        with self._private_index() as index:
            stage_tree(self.git_dir, source, index)
            tree = self._run("write-tree", index=index).strip()
        return self._commit_tree(tree, parent, message)

    def commit_same_tree(self, like: str, parent: str | None, message: str) -> str:
        """A commit holding the same files as commit `like`, with `parent` as parent (for a version whose own
        files could not be archived); the commit's sha."""
        return self._commit_tree(self._run("rev-parse", "--verify", f"{like}^{{tree}}").strip(), parent, message)

    def _commit_tree(self, tree: str, parent: str | None, message: str) -> str:
        parents = ["-p", parent] if parent else []
        return self._run("commit-tree", tree, *parents, "-m", message).strip()

    def tag(self, version: int, commit: str) -> None:
        """Tag `commit` as `agent-N`; refuses to move an existing tag."""
        self._run("update-ref", f"refs/tags/{tag_name(version)}", commit, "")

    def delete_tag(self, version: int) -> None:
        self._run("update-ref", "-d", f"refs/tags/{tag_name(version)}")

    def tags(self) -> dict[int, str]:
        """Version number → commit sha, for every `agent-N` tag."""
        listed = self._run("for-each-ref", "--format=%(refname:strip=2) %(objectname)", "refs/tags/")
        found: dict[int, str] = {}
        for line in listed.splitlines():
            name, _, sha = line.partition(" ")
            if match := _TAG.fullmatch(name):
                found[int(match.group(1))] = sha
        return found

    def commit_of(self, version: int) -> str:
        return self._run("rev-parse", "--verify", "--quiet", f"refs/tags/{tag_name(version)}^{{commit}}").strip()

    def parent_of(self, commit: str) -> str | None:
        """The commit's parent (None for the root)."""
        shas = self._run("rev-list", "--parents", "-n", "1", commit).split()
        return shas[1] if len(shas) > 1 else None

    def message(self, commit: str) -> str:
        return self._run("log", "-1", "--format=%B", commit)

    def read_text(self, commit: str, path: str) -> str | None:
        """The text of one file of the commit, without a checkout; None when the commit has no such file."""
        if not self._run("ls-tree", "--name-only", commit, "--", path).strip():
            return None
        return self._run("cat-file", "blob", f"{commit}:{path}")

    def checkout(self, commit: str, dest: Path) -> None:
        """Write the commit's files into `dest` (made when missing; must be empty): read into a private index,
        then `checkout-index`, which runs no hooks."""
        dest.mkdir(parents=True, exist_ok=True)
        if any(dest.iterdir()):
            raise ArchiveError(f"{dest} is not empty: check a version out into a new or empty folder")
        neutralize_attributes(self.git_dir)
        with self._private_index() as index:
            self._run("read-tree", commit, workdir=dest, index=index)
            self._run("checkout-index", "--all", "--force", workdir=dest, index=index)

    def diff(self, commit: str, cap_bytes: int = DIFF_CAP_BYTES) -> str:
        """The change from the commit's parent (from nothing for the root), as a text patch of at most
        `cap_bytes` (a longer one is cut and says so)."""
        with tempfile.TemporaryFile() as out:
            self._run(
                "diff-tree", "-p", "--root", "--no-commit-id", "--no-ext-diff", "--no-textconv", "-M", commit, out=out
            )
            return read_capped_diff(out, cap_bytes)
