"""Workdirs and their diffs, taken safely: nothing the agent wrote runs on the host.

The starting tree is committed to a git directory the harness owns (outside the workdir), and the diff is taken
against it with hooks, fsmonitor, external diff drivers and textconv disabled; copies never follow symlinks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

#: Never copied into a scratch workdir: version control, environments and caches.
SKIPPED = (".git", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", "node_modules")
#: git options that keep a tree's content from running anything on the host (hooks, fsmonitor, diff drivers).
SAFE_GIT = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "diff.external=",
            "-c", "core.excludesFile=", "-c", "user.name=sica", "-c", "user.email=sica@localhost",
            "-c", "commit.gpgSign=false", "-c", "core.autocrlf=false", "-c", "core.symlinks=true"]


class DiffError(Exception):
    """git failed on a workdir; one line."""


def copy_tree(source: Path, destination: Path) -> None:
    """Copy a repository's files (not its .git, environments or caches), keeping symlinks as symlinks, into
    `destination` (made when missing)."""
    shutil.copytree(source, destination, symlinks=True, ignore=shutil.ignore_patterns(*SKIPPED), dirs_exist_ok=True)


def _git(git_dir: Path, workdir: Path, *args: str, index: Path | None = None) -> str:
    """Run git on `git_dir` with the safe options and a bare environment; `index` is a private index file."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(git_dir), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": "/dev/null", "LANG": "C.UTF-8"}
    if index is not None:
        env["GIT_INDEX_FILE"] = str(index)
    done = subprocess.run(["git", *SAFE_GIT, f"--git-dir={git_dir}", f"--work-tree={workdir}", *args],
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise DiffError(f"git {args[0]} failed: {' '.join(done.stderr.split())[-300:]}")
    return done.stdout


def record_baseline(workdir: Path, git_dir: Path) -> None:
    """Commit the starting tree of `workdir` to a git directory the harness owns."""
    subprocess.run(["git", "init", "--quiet", "--bare", "--template=", str(git_dir)], check=True, capture_output=True)
    (git_dir / "info").mkdir(exist_ok=True)
    (git_dir / "info" / "exclude").write_text("\n".join(f"{name}/" for name in SKIPPED) + "\n")
    _git(git_dir, workdir, "add", "--all")
    _git(git_dir, workdir, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", "baseline")


def take_diff(workdir: Path, git_dir: Path) -> str:
    """The unified diff (binary-safe) from the baseline to the workdir as it is now."""
    _git(git_dir, workdir, "add", "--all")
    return _git(git_dir, workdir, "diff", "--cached", "--binary", "--no-ext-diff", "--no-textconv", "HEAD")


def changed_files(diff: str) -> list[str]:
    return sorted({line[6:] for line in diff.splitlines() if line.startswith(("+++ b/", "--- a/"))})


def apply_diff(repo: Path, diff: str) -> None:
    """Apply a diff to the user's repository; refuse if it has uncommitted changes to the same files."""
    files = changed_files(diff)
    if (repo / ".git").exists() and files:
        dirty = subprocess.run(["git", *SAFE_GIT, "-C", str(repo), "status", "--porcelain", "--", *files],
                               capture_output=True, text=True).stdout.strip()
        if dirty:
            raise DiffError(f"{repo} has uncommitted changes to files the diff touches ({', '.join(files)}): commit "
                            "or stash them, then apply the kept diff.patch with `git apply`")
    for args in (["--check"], []):
        done = subprocess.run(["git", *SAFE_GIT, "apply", *args, "-"], input=diff, capture_output=True, text=True,
                              cwd=repo)
        if done.returncode != 0:
            raise DiffError(f"the diff does not apply to {repo}: {' '.join(done.stderr.split())[-300:]}")
