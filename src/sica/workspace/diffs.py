"""Workdirs and their diffs, taken safely: nothing the agent wrote runs on the host, and nothing it leaves breaks
the diff or fills the harness's memory.

The starting tree is committed to a git directory the harness owns (outside the workdir), and the diff is taken
against it by `workspace.git` (hooks, fsmonitor, external diff drivers, textconv and the tree's own
`.gitattributes` disabled). What git cannot keep or must not see (nested repositories, special files, files,
folders and paths past the limits of `sandbox.untrusted`) is found by a walk of the harness's own and left out by
path, with a note. The diff goes to a file and is read back up to a cap; notes head the diff (`sica: ` lines,
before its first `diff --git`, which `git apply` passes over): what was left out, that it was cut, that it holds
bytes that are not UTF-8 (shown as U+FFFD).
"""

from __future__ import annotations

import codecs
import os
import tempfile
from pathlib import Path
from typing import IO

from sica.sandbox.untrusted import UNTRUSTED_LIMITS, LeftOut, UntrustedTreeError, walk_untrusted_tree
from sica.workspace.git import GitError, git, init_bare, neutralize_attributes
from sica.workspace.trees import SKIPPED, SKIPPED_FOLDERS

#: Bytes of a diff kept (in memory and on disk); the rest is cut, and the diff says so.
DIFF_CAP_BYTES = 8 << 20

NOTE = "sica: "
CUT_NOTE = "sica: this diff was cut"
LEFT_OUT_NOTE = "sica: left out of this diff: "
NOT_UTF8_NOTE = "sica: this diff holds bytes that are not UTF-8, shown as U+FFFD"


class DiffError(Exception):
    """A diff that cannot be applied to the user's repository; one line."""


def stage_tree(git_dir: Path, workdir: Path, index: Path | None = None) -> LeftOut:
    """`git add --all` of `workdir`, leaving out (by path) what a walk within the untrusted limits leaves out:
    nested repositories (whose `git add` fails or records a link to another repository), special files, and
    files, folders and paths past the limits. What was left out; `UntrustedTreeError` when the tree has more
    entries than the limit (it is not staged at all) or git fails on it."""
    neutralize_attributes(git_dir)
    left_out = LeftOut()
    for _ in walk_untrusted_tree(
        workdir, UNTRUSTED_LIMITS, left_out, skip_folders=frozenset(SKIPPED), nested_repositories=True
    ):
        pass
    if left_out.truncated:
        raise UntrustedTreeError(f"the tree has more than {UNTRUSTED_LIMITS.max_entries} entries: no diff is taken")
    pathspecs = b"".join(b":(top,exclude,literal)" + os.fsencode(path) + b"\0" for path in left_out.paths)
    try:
        git(
            "add",
            "--all",
            "--pathspec-from-file=-",
            "--pathspec-file-nul",
            git_dir=git_dir,
            work_tree=workdir,
            index=index,
            stdin=pathspecs + b":(top)\0",
        )
    except GitError as error:
        raise UntrustedTreeError(f"the tree cannot be staged: {error}") from None
    return left_out


def record_baseline(workdir: Path, git_dir: Path) -> None:
    """Commit the starting tree of `workdir` to a git directory the harness owns."""
    init_bare(git_dir, SKIPPED_FOLDERS)
    stage_tree(git_dir, workdir)
    git("commit", "--quiet", "--no-verify", "--allow-empty", "-m", "baseline", git_dir=git_dir, work_tree=workdir)


def take_diff(workdir: Path, git_dir: Path, cap_bytes: int = DIFF_CAP_BYTES) -> str:
    """The unified diff (binary-safe) from the baseline to the workdir as it is now, at most `cap_bytes` of
    it, headed by notes of what it left out, whether it was cut and whether it holds bytes that are not UTF-8.
    Raises `UntrustedTreeError` when the tree cannot be diffed (the agent's doing: a tree past the entry
    limit, one git fails on)."""
    left_out = stage_tree(git_dir, workdir)
    with tempfile.TemporaryFile() as out:
        try:
            git(
                "diff",
                "--cached",
                "--binary",
                "--no-ext-diff",
                "--no-textconv",
                "HEAD",
                git_dir=git_dir,
                work_tree=workdir,
                out=out,
            )
        except GitError as error:
            raise UntrustedTreeError(f"the diff cannot be taken: {error}") from None
        return read_capped_diff(out, cap_bytes, left_out.lines())


def read_capped_diff(out: IO[bytes], cap_bytes: int, left_out: list[str] | None = None) -> str:
    """A diff written to `out`, read back up to `cap_bytes` as text, headed by its notes."""
    size = out.seek(0, os.SEEK_END)
    out.seek(0)
    data = out.read(cap_bytes)
    notes = [LEFT_OUT_NOTE + line for line in left_out or []]
    if size > cap_bytes:
        notes.append(f"{CUT_NOTE} at {cap_bytes} of its {size} bytes: it does not apply")
    try:
        text = codecs.getincrementaldecoder("utf-8")("strict").decode(data, final=size <= cap_bytes)
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        notes.append(f"{NOT_UTF8_NOTE}: it does not apply as it is")
    return "".join(f"{note}\n" for note in notes) + text


def diff_notes(diff: str) -> list[str]:
    """The harness's notes heading a diff (the `sica: ` lines before its first `diff --git`)."""
    notes = []
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            break
        if line.startswith(NOTE):
            notes.append(line)
    return notes


def changed_files(diff: str) -> list[str]:
    return sorted({line[6:] for line in diff.splitlines() if line.startswith(("+++ b/", "--- a/"))})


def apply_diff(repo: Path, diff: str) -> None:
    """Apply a diff to the user's repository; refuse if it was cut or lost bytes, or if the repository has
    uncommitted changes to the same files."""
    for note in diff_notes(diff):
        if note.startswith((CUT_NOTE, NOT_UTF8_NOTE)):
            raise DiffError(
                f"the diff cannot be applied as it is ({note.removeprefix(NOTE)}): apply the changes "
                "from the kept workdir by hand"
            )
    files = changed_files(diff)
    if (repo / ".git").exists() and files:
        dirty = git("status", "--porcelain", "--", *files, cwd=repo, check=False).stdout.strip()
        if dirty:
            raise DiffError(
                f"{repo} has uncommitted changes to files the diff touches ({', '.join(files)}): commit "
                "or stash them, then apply the kept diff.patch with `git apply`"
            )
    for args in (["--check"], []):
        done = git("apply", *args, "-", stdin=diff, cwd=repo, check=False)
        if done.returncode != 0:
            raise DiffError(f"the diff does not apply to {repo}: {' '.join(done.stderr.split())[-300:]}")
