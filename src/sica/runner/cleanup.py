"""`sica clean`: what the harness caches or leaves behind that nothing refers to any more, and removing it.

What goes, and the rules that keep it safe (a plan first, so a dry run shows exactly what would go and why):

- Environments (`[solve] envs_dir`, one folder a hash of the interpreter and the requirements): removed unless
  one of these refers to it: agent 0 (the seed), any version of any run under `[loop] runs_dir` (its
  pyproject.toml read from `archive.git`, no checkout), or a problem environment the built-in benchmarks register
  (`sica.benchmarks.ENVIRONMENTS`). If any run there cannot be read, no environment is removed: its versions'
  environments are unknown.
- Unfinished environment builds (`.KEY.PID.partial`): removed once their process is gone.
- Scratch folders (`sica-*` in the temporary folder, this user's, made by `tempfile` and left by a process that
  was killed): removed, a tmpfs mounted on one unmounted first; one a process has open or works in, or holding any
  other mount, is left alone.
- Unfinished run folders (`.NAME.creating-*` under `[loop] runs_dir`, left by a crash while a run was made).

And for all of them: nothing used within the last `min_age_s`, and nothing made or used since the first of the
running sica processes started (each command holds the lock of `runner.liveness`): those may still be in use.
An environment's use is the mtime of its `.complete` (touched on every use). Eval results and solves are
records, never touched here. Removing never follows a symbolic link and never leaves the folder it was given.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sica.archive import ArchiveError, Run
from sica.archive.run import ARCHIVE, DATABASE
from sica.benchmarks import problem_environment_requirements
from sica.config import Settings
from sica.runner.environments import AgentVersionError, declared_dependencies, parse_dependencies, seed_agent_dir
from sica.runner.liveness import LiveHarnesses, live_harnesses
from sica.workspace.environments import COMPLETE, agent_python, environment_key, interpreter_version

ENVIRONMENT = "environment"
PARTIAL_ENVIRONMENT = "unfinished environment"
SCRATCH = "scratch folder"
PARTIAL_RUN = "unfinished run"
#: What every temporary folder of the harness is named (`tempfile.mkdtemp(prefix="sica-...")`).
SCRATCH_PREFIX = "sica-"
_KEY = re.compile(r"[0-9a-f]{16}")
_PARTIAL = re.compile(r"\.([0-9a-f]{16})\.(\d+)\.partial")
_CREATING = re.compile(r"\..+\.creating-[0-9a-f]{8}")


@dataclass(frozen=True)
class Removal:
    """A folder to remove: what it is, its size on disk in bytes, why it can go, whether a mount must go first, and
    (an environment) when it was last used as planned."""

    path: Path
    kind: str
    size: int
    reason: str
    mounted: bool = False
    used: float | None = None


@dataclass(frozen=True)
class Kept:
    """A folder left alone, and why."""

    path: Path
    kind: str
    reason: str


@dataclass(frozen=True)
class CleanupPlan:
    """What would go, what stays; `refusal` is why environments were not considered at all (an unreadable run)."""

    removals: list[Removal] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    refusal: str | None = None
    live: LiveHarnesses = LiveHarnesses()

    @property
    def size(self) -> int:
        return sum(removal.size for removal in self.removals)


@dataclass(frozen=True)
class _Rules:
    """When a folder last used at some time may go: old enough, and older than every running harness."""

    now: float
    min_age_s: float
    live: LiveHarnesses

    def why_kept(self, used: float) -> str | None:
        if used > self.now - self.min_age_s:
            return f"used in the last {self.min_age_s / 60:g} minutes"
        if self.live.since is not None and used >= self.live.since:
            return f"may be in use by a running sica process ({_pids(self.live)})"
        return None


def plan_cleanup(settings: Settings, now: float, *, tmpdir: Path, min_age_s: float = 3600.0) -> CleanupPlan:
    """What `sica clean` would remove (see the module's docstring for the rules), measured, and what it keeps."""
    rules = _Rules(now, min_age_s, live_harnesses(tmpdir))
    removals: list[Removal] = []
    kept: list[Kept] = []
    envs_dir = settings.solve.envs_dir.expanduser()
    runs_dir = settings.loop.runs_dir.expanduser()
    refusal = None
    if _candidate_environments(envs_dir):
        referenced, refusal = referenced_environments(runs_dir, interpreter_version(agent_python()))
        if refusal is None:
            _plan_environments(envs_dir, referenced, rules, removals, kept)
    _plan_partial_environments(envs_dir, rules, removals, kept)
    _plan_scratch(tmpdir, rules, removals, kept)
    _plan_partial_runs(runs_dir, rules, removals, kept)
    return CleanupPlan(removals, kept, refusal, rules.live)


def referenced_environments(runs_dir: Path, version: str) -> tuple[dict[str, str], str | None]:
    """Environment key → who refers to it (the seed, runs' versions, built-in problems), and the one-line refusal
    when a run cannot be read (then the keys are incomplete and must not be used to remove anything)."""
    referenced: dict[str, str] = {environment_key(declared_dependencies(seed_agent_dir()), version): "agent 0"}
    for requirements in problem_environment_requirements():
        referenced.setdefault(environment_key(requirements, version), "built-in problems")
    unreadable: list[tuple[Path, str]] = []
    for folder in _run_folders(runs_dir):
        try:
            for number, requirements in _version_requirements(folder):
                referenced.setdefault(environment_key(requirements, version), f"{folder.name}:agent-{number}")
        except (ArchiveError, OSError, sqlite3.Error) as error:
            unreadable.append((folder, str(error)))
    if not unreadable:
        return referenced, None
    (first, reason), others = unreadable[0], len(unreadable) - 1
    also = f" (and {others} other run{'s' if others > 1 else ''})" if others else ""
    return referenced, (
        f"cannot read run {first}{also}: {reason}; no environment was removed: repair the run or "
        f"move it out of {runs_dir}, then clean again"
    )


def _run_folders(runs_dir: Path) -> list[Path]:
    """Folders under `runs_dir` that are runs or were (one with its database or its archive left)."""
    if not runs_dir.is_dir():
        return []
    return [
        folder
        for folder in sorted(runs_dir.iterdir())
        if not folder.name.startswith(".")
        and not folder.is_symlink()
        and folder.is_dir()
        and ((folder / DATABASE).exists() or (folder / ARCHIVE).exists())
    ]


def _version_requirements(folder: Path) -> Iterator[tuple[int, list[str]]]:
    """Each committed version's declared dependencies, read from its commit; versions whose pyproject.toml is
    missing or unreadable never had an environment and are passed over."""
    with Run.open(folder, read_only=True) as run:
        for version in run.versions():
            if version.commit_sha is None:
                continue
            text = run.git.read_text(version.commit_sha, "pyproject.toml")
            if text is None:
                continue
            try:
                yield version.number, parse_dependencies(text, f"{folder.name}:agent-{version.number}")
            except AgentVersionError:
                continue


def _candidate_environments(envs_dir: Path) -> list[Path]:
    if not envs_dir.is_dir():
        return []
    return [path for path in sorted(envs_dir.iterdir()) if _KEY.fullmatch(path.name) and _is_real_dir(path)]


def _plan_environments(
    envs_dir: Path, referenced: dict[str, str], rules: _Rules, removals: list[Removal], kept: list[Kept]
) -> None:
    for env in _candidate_environments(envs_dir):
        if env.name in referenced:
            kept.append(Kept(env, ENVIRONMENT, f"used by {referenced[env.name]}"))
            continue
        used = last_used(env)
        if why := rules.why_kept(used):
            kept.append(Kept(env, ENVIRONMENT, why))
        else:
            removals.append(
                Removal(env, ENVIRONMENT, disk_usage(env), "no run, agent 0 or built-in problem uses it", used=used)
            )


def last_used(env: Path) -> float:
    """When an environment was last used: its `.complete` marker's mtime (touched on every use), else the folder's."""
    for path in (env / COMPLETE, env):
        try:
            return path.lstat().st_mtime
        except OSError:
            continue
    return float("inf")


def _plan_partial_environments(envs_dir: Path, rules: _Rules, removals: list[Removal], kept: list[Kept]) -> None:
    for path in sorted(envs_dir.iterdir()) if envs_dir.is_dir() else []:
        match = _PARTIAL.fullmatch(path.name)
        if not match or not _is_real_dir(path):
            continue
        pid = int(match.group(2))
        if _alive(pid):
            kept.append(Kept(path, PARTIAL_ENVIRONMENT, f"process {pid} is still building it"))
        elif why := rules.why_kept(path.lstat().st_mtime):
            kept.append(Kept(path, PARTIAL_ENVIRONMENT, why))
        else:
            removals.append(Removal(path, PARTIAL_ENVIRONMENT, disk_usage(path), f"its builder (pid {pid}) is gone"))


def _plan_scratch(tmpdir: Path, rules: _Rules, removals: list[Removal], kept: list[Kept]) -> None:
    if not tmpdir.is_dir():
        return
    mounts, opened = mount_points(), paths_in_use()
    real_tmpdir = Path(os.path.realpath(tmpdir))
    for path in sorted(tmpdir.iterdir()):
        if not path.name.startswith(SCRATCH_PREFIX) or not _is_real_dir(path) or path.lstat().st_uid != os.geteuid():
            continue
        real = real_tmpdir / path.name
        inside = [mount for mount in mounts if mount.is_relative_to(real) and mount != real]
        mounted = real in mounts
        users = [user for user in opened if user.is_relative_to(real)]
        if why := rules.why_kept(path.lstat().st_mtime):
            kept.append(Kept(path, SCRATCH, why))
        elif users:
            kept.append(Kept(path, SCRATCH, f"a process has {users[0]} open or as its folder"))
        elif inside:
            kept.append(Kept(path, SCRATCH, f"holds a mount ({inside[0]}): unmount it, then clean again"))
        elif mounted and os.geteuid() != 0:
            kept.append(Kept(path, SCRATCH, "a mount point: only root may unmount it"))
        else:
            removals.append(Removal(path, SCRATCH, disk_usage(path), "left by a sica process that is gone", mounted))


def _plan_partial_runs(runs_dir: Path, rules: _Rules, removals: list[Removal], kept: list[Kept]) -> None:
    for path in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []:
        if not _CREATING.fullmatch(path.name) or not _is_real_dir(path):
            continue
        if why := rules.why_kept(path.lstat().st_mtime):
            kept.append(Kept(path, PARTIAL_RUN, why))
        else:
            removals.append(Removal(path, PARTIAL_RUN, disk_usage(path), "a run folder whose making was cut short"))


def apply(plan: CleanupPlan) -> Iterator[tuple[Removal, str | None]]:
    """Remove what the plan lists, one at a time: each removal with None, or with why it failed (the rest go on).
    An environment is first renamed to an unfinished build's name, so no process picks it up half removed, and put
    back if it was used since the plan."""
    for removal in plan.removals:
        try:
            _remove(removal)
        except OSError as error:
            yield removal, str(error)
        else:
            yield removal, None


def _remove(removal: Removal) -> None:
    path = removal.path
    if removal.kind == ENVIRONMENT:
        aside = path.with_name(f".{path.name}.{os.getpid()}.partial")
        path.rename(aside)
        if last_used(aside) != removal.used:
            aside.rename(path)
            raise OSError(f"{path} was used since the plan was made: kept")
        path = aside
    if removal.mounted:
        done = subprocess.run(["umount", str(path)], capture_output=True, text=True)
        if done.returncode != 0 or Path(os.path.realpath(path)) in mount_points():
            raise OSError(f"cannot unmount {path}: {' '.join(done.stderr.split()) or 'still mounted'}")
    if _is_real_dir(path):
        _remove_tree(path)


def _remove_tree(path: Path) -> None:
    """Remove a folder without following links (`shutil.rmtree` works on descriptors here); when something is in
    the way (a folder an agent made unwritable), open this user's folders up and try once more."""
    try:
        shutil.rmtree(path)
    except OSError:
        _open_up(path)
        shutil.rmtree(path)


def _open_up(top: Path) -> None:
    """Give this user's folders under `top` (not following links) the rights removing their entries needs."""
    for root, dirs, _ in os.walk(top):
        for folder in [Path(root), *(Path(root) / name for name in dirs)]:
            try:
                info = folder.lstat()
                if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid():
                    folder.chmod(0o700)
            except OSError:
                continue


def disk_usage(top: Path) -> int:
    """Bytes on disk under `top`, each file once (hard links), links not followed, unreadable parts skipped."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, dirs, files in os.walk(top):
        for name in [*dirs, *files, *([""] if root == str(top) else [])]:
            try:
                info = os.lstat(os.path.join(root, name) if name else root)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512
    return total


def mount_points() -> set[Path]:
    """Every mount point this process's mount namespace has (`/proc/self/mountinfo`, octal escapes undone)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return set()
    return {
        Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4]))
        for line in lines
        if len(line.split()) > 4
    }


def paths_in_use() -> set[Path]:
    """What the processes this one may look at have open, or as working or root folder (`/proc/*/{cwd,root,fd}`)."""
    found: set[Path] = set()
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            links = [process / "cwd", process / "root", *(process / "fd").iterdir()]
        except OSError:
            links = [process / "cwd", process / "root"]
        for link in links:
            try:
                found.add(Path(os.readlink(link).removesuffix(" (deleted)")))
            except OSError:
                continue
    return found


def _is_real_dir(path: Path) -> bool:
    """A folder itself, not a link to one."""
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pids(live: LiveHarnesses) -> str:
    return f"pid {', '.join(map(str, live.pids))}" if live.pids else "pid unknown"
