"""The one way the harness runs git: `git()`, on trees an agent may have written.

Nothing in a tree may run on the host or change what git records: hooks, fsmonitor, external diff drivers and
the user's excludes are off (`SAFE_GIT`), no user or system configuration is read, and the environment is bare
(PATH, HOME, LANG). The harness's own git directories also get `NEUTRAL_ATTRIBUTES`, which outrank every
`.gitattributes` of the tree. Only a call that reaches a remote (`remote=True`: cloning or fetching a benchmark's
repository into a bare mirror, no tree checked out) keeps the user's environment and configuration, which hold
their proxies and credentials; it never prompts.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

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


class GitError(Exception):
    """git exited non-zero; one line (the subcommand and the end of what git said). `stderr` holds all of it."""

    def __init__(self, command: str, stderr: str) -> None:
        super().__init__(f"git {command} failed: {' '.join(stderr.split())[-300:]}")
        self.stderr = stderr


@dataclass(frozen=True)
class GitResult:
    """What a git call printed (as text, bytes that are not UTF-8 replaced; empty when written to a file)."""

    returncode: int
    stdout: str
    stderr: str


def git(
    *args: str,
    git_dir: Path | None = None,
    work_tree: Path | None = None,
    cwd: Path | None = None,
    index: Path | None = None,
    stdin: bytes | str = b"",
    out: IO[bytes] | None = None,
    remote: bool = False,
    check: bool = True,
) -> GitResult:
    """Run `git SAFE_GIT [--git-dir] [--work-tree] ARGS` in `cwd`, with `index` as a private index file, `stdin`
    as its input and its output written to `out` when given. Raises `GitError` when it fails and `check` is set."""
    if remote:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    else:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(git_dir or cwd or "/"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "LANG": "C.UTF-8",
        }
    if index is not None:
        env["GIT_INDEX_FILE"] = str(index)
    places = [f"--git-dir={git_dir}"] if git_dir is not None else []
    places += [f"--work-tree={work_tree}"] if work_tree is not None else []
    done = subprocess.run(
        ["git", *SAFE_GIT, *places, *args],
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        stdout=out if out is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    stderr = done.stderr.decode("utf-8", errors="replace")
    if check and done.returncode != 0:
        raise GitError(args[0] if args else "", stderr)
    stdout = "" if out is not None else done.stdout.decode("utf-8", errors="replace")
    return GitResult(done.returncode, stdout, stderr)


def init_bare(git_dir: Path, excluded: Iterable[str]) -> None:
    """Make an empty bare repository without a template (no sample hooks) whose `info/exclude` lists `excluded`."""
    git("init", "--quiet", "--bare", "--template=", str(git_dir))
    (git_dir / "info").mkdir(exist_ok=True)
    (git_dir / "info" / "exclude").write_text("".join(f"{pattern}\n" for pattern in excluded))


def neutralize_attributes(git_dir: Path) -> None:
    """Write the harness's `info/attributes` into `git_dir` (see `NEUTRAL_ATTRIBUTES`)."""
    (git_dir / "info").mkdir(exist_ok=True)
    (git_dir / "info" / "attributes").write_text(NEUTRAL_ATTRIBUTES)
