"""Workdirs and their diffs, taken safely: nothing the agent wrote runs on the host, and nothing it leaves breaks
the diff or fills the harness's memory.

The starting tree is committed to a git directory the harness owns (outside the workdir), and the diff is taken
against it with hooks, fsmonitor, external diff drivers, textconv and the tree's own `.gitattributes` disabled.
What git cannot keep or must not see (nested repositories, special files, files, folders and paths past the
limits of `sandbox.untrusted`) is found by a walk of the harness's own and left out by path, with a note. The
diff goes to a file and is read back up to a cap; notes head the diff (`sica: ` lines, before its first `diff
--git`, which `git apply` passes over): what was left out, that it was cut, that it holds bytes that are not
UTF-8 (shown as U+FFFD). Copies never follow links (`sandbox.untrusted.copy_tree_into`).
"""

from __future__ import annotations

import codecs
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from sica.sandbox.untrusted import (
    TRUSTED_LIMITS,
    UNTRUSTED_LIMITS,
    LeftOut,
    UntrustedTreeError,
    copy_tree_into,
    walk_untrusted_tree,
)

#: Never copied into a scratch workdir: version control, environments and caches.
SKIPPED = (".git", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", "node_modules")
#: git options that keep a tree's content from running anything on the host (hooks, fsmonitor, diff drivers).
SAFE_GIT = [
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "diff.external=",
    "-c",
    "core.excludesFile=",
    "-c",
    "user.name=sica",
    "-c",
    "user.email=sica@localhost",
    "-c",
    "commit.gpgSign=false",
    "-c",
    "core.autocrlf=false",
    "-c",
    "core.symlinks=true",
    "-c",
    "core.quotePath=true",
    "-c",
    "core.attributesFile=/dev/null",
]
#: `info/attributes` of the harness's git directories: it outranks every `.gitattributes` of the tree, whose
#: `working-tree-encoding`, `eol` or `filter` would make `git add` fail or change what is recorded.
NEUTRAL_ATTRIBUTES = "* -text -eol -filter -ident -working-tree-encoding !diff !merge\n"
#: Bytes of a diff kept (in memory and on disk); the rest is cut, and the diff says so.
DIFF_CAP_BYTES = 8 << 20

NOTE = "sica: "
CUT_NOTE = "sica: this diff was cut"
LEFT_OUT_NOTE = "sica: left out of this diff: "
NOT_UTF8_NOTE = "sica: this diff holds bytes that are not UTF-8, shown as U+FFFD"


class DiffError(Exception):
    """git failed on a workdir; one line."""


def copy_tree(
    source: Path, destination: Path, leave_out: Callable[[str], str | None] | None = None, notes: LeftOut | None = None
) -> None:
    """Copy a repository's files (not its .git, environments or caches, nor the entries `leave_out` names a
    reason for), keeping links as links and holes as holes, without special files or setuid bits, into
    `destination` (made when missing); what was left out is added to `notes`."""
    left_out = copy_tree_into(source, destination, TRUSTED_LIMITS, skip=frozenset(SKIPPED), leave_out=leave_out)
    if notes is not None:
        notes.paths += left_out.paths
        for reason, paths in left_out.by_reason.items():
            notes.by_reason.setdefault(reason, []).extend(paths)


def _git(
    git_dir: Path,
    workdir: Path,
    *args: str,
    index: Path | None = None,
    stdin: bytes = b"",
    out: IO[bytes] | None = None,
) -> str:
    """Run git on `git_dir` with the safe options and a bare environment; `index` is a private index file. Its
    output is returned as text (bytes that are not UTF-8 replaced), or written to `out`."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(git_dir),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "LANG": "C.UTF-8",
    }
    if index is not None:
        env["GIT_INDEX_FILE"] = str(index)
    done = subprocess.run(
        ["git", *SAFE_GIT, f"--git-dir={git_dir}", f"--work-tree={workdir}", *args],
        input=stdin,
        stdout=out if out is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", errors="replace")
        raise DiffError(f"git {args[0]} failed: {' '.join(said.split())[-300:]}")
    return "" if out is not None else done.stdout.decode("utf-8", errors="replace")


def neutralize_attributes(git_dir: Path) -> None:
    """Write the harness's `info/attributes` into `git_dir` (see `NEUTRAL_ATTRIBUTES`)."""
    (git_dir / "info").mkdir(exist_ok=True)
    (git_dir / "info" / "attributes").write_text(NEUTRAL_ATTRIBUTES)


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
        _git(
            git_dir,
            workdir,
            "add",
            "--all",
            "--pathspec-from-file=-",
            "--pathspec-file-nul",
            index=index,
            stdin=pathspecs + b":(top)\0",
        )
    except DiffError as error:
        raise UntrustedTreeError(f"the tree cannot be staged: {error}") from None
    return left_out


def record_baseline(workdir: Path, git_dir: Path) -> None:
    """Commit the starting tree of `workdir` to a git directory the harness owns."""
    subprocess.run(["git", "init", "--quiet", "--bare", "--template=", str(git_dir)], check=True, capture_output=True)
    (git_dir / "info").mkdir(exist_ok=True)
    (git_dir / "info" / "exclude").write_text("\n".join(f"{name}/" for name in SKIPPED) + "\n")
    stage_tree(git_dir, workdir)
    _git(git_dir, workdir, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", "baseline")


def take_diff(workdir: Path, git_dir: Path, cap_bytes: int = DIFF_CAP_BYTES) -> str:
    """The unified diff (binary-safe) from the baseline to the workdir as it is now, at most `cap_bytes` of
    it, headed by notes of what it left out, whether it was cut and whether it holds bytes that are not UTF-8.
    Raises `UntrustedTreeError` when the tree cannot be diffed (the agent's doing: a tree past the entry
    limit, one git fails on)."""
    left_out = stage_tree(git_dir, workdir)
    with tempfile.TemporaryFile() as out:
        try:
            _git(git_dir, workdir, "diff", "--cached", "--binary", "--no-ext-diff", "--no-textconv", "HEAD", out=out)
        except DiffError as error:
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
        dirty = subprocess.run(
            ["git", *SAFE_GIT, "-C", str(repo), "status", "--porcelain", "--", *files], capture_output=True, text=True
        ).stdout.strip()
        if dirty:
            raise DiffError(
                f"{repo} has uncommitted changes to files the diff touches ({', '.join(files)}): commit "
                "or stash them, then apply the kept diff.patch with `git apply`"
            )
    for args in (["--check"], []):
        done = subprocess.run(
            ["git", *SAFE_GIT, "apply", *args, "-"], input=diff, capture_output=True, text=True, cwd=repo
        )
        if done.returncode != 0:
            raise DiffError(f"the diff does not apply to {repo}: {' '.join(done.stderr.split())[-300:]}")
