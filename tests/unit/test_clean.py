"""`sica clean`: which environments, scratch folders and unfinished runs go and which stay (a real run folder with
real git and SQLite, fake environment folders, a temporary folder of the test's own), and the command itself."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sica.archive import Run
from sica.archive.run import DATABASE
from sica.benchmarks import ENVIRONMENTS, problem_environment_requirements
from sica.benchmarks.environments import problem_requirements
from sica.config import Settings, load_settings
from sica.runner.cleanup import (ENVIRONMENT, PARTIAL_ENVIRONMENT, PARTIAL_RUN, SCRATCH, CleanupPlan, apply,
                                 plan_cleanup)
from sica.runner.environments import declared_dependencies, seed_agent_dir
from sica.runner.liveness import hold_harness_lock, live_harnesses
from sica.workspace.environments import COMPLETE, agent_python, build_environment, environment_key, interpreter_version
from tests.support.cli import clean_environ, run_sica

SEED = seed_agent_dir()
HOUR = 3600.0
SRC = Path(__file__).resolve().parents[2] / "src" / "sica"


@pytest.fixture(scope="module")
def version() -> str:
    return interpreter_version(agent_python())


@pytest.fixture
def place(tmp_path: Path) -> dict[str, Path]:
    """The folders clean looks at, each the test's own."""
    folders = {name: tmp_path / name for name in ("envs", "runs", "tmp", "outside")}
    for folder in folders.values():
        folder.mkdir()
    (folders["outside"] / "keep.txt").write_text("not sica's\n")
    return folders


def settings_for(place: dict[str, Path], tmp_path: Path) -> Settings:
    config = tmp_path / "sica.toml"
    config.write_text(f'[solve]\nenvs_dir = "{place["envs"]}"\n[loop]\nruns_dir = "{place["runs"]}"\n')
    return load_settings(config, {})


def aged(path: Path, age_s: float) -> Path:
    """Set the path's mtime (not following a link) `age_s` seconds back."""
    then = time.time() - age_s
    os.utime(path, (then, then), follow_symlinks=False)
    return path


def make_env(envs_dir: Path, requirements: list[str], version: str, age_s: float) -> Path:
    """A fake environment folder where `build_environment` would put one, last used `age_s` seconds ago."""
    env = envs_dir / environment_key(requirements, version)
    (env / "lib").mkdir(parents=True)
    (env / "lib" / "module.py").write_text("x = 1\n" * 2000)
    (env / COMPLETE).write_text("\n".join(requirements) + "\n")
    aged(env / COMPLETE, age_s)
    return env


def make_scratch(tmpdir: Path, name: str, age_s: float) -> Path:
    folder = tmpdir / name
    (folder / "work").mkdir(parents=True)
    (folder / "work" / "file.txt").write_text("scratch\n" * 500)
    return aged(folder, age_s)


def make_run(runs_dir: Path, tmp_path: Path) -> Run:
    """A run with agent-1 (one more dependency than the seed) and agent-2 (no pyproject.toml: never had an
    environment)."""
    run = Run.create(runs_dir / "r1", SEED, {"loop": {"policy": "sica"}})
    one = run.checkout(0, tmp_path / "one")
    pyproject = one / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"httpx==0.28.1",', '"httpx==0.28.1",\n    "rich==13.0.0",'))
    assert run.add_version(0, one, "adds rich", "- rich") == 1
    two = run.checkout(0, tmp_path / "two")
    (two / "pyproject.toml").unlink()
    assert run.add_version(0, two, "drops its pyproject", "- oops", invalid_reason="no pyproject") == 2
    return run


def removed_paths(plan: CleanupPlan) -> set[Path]:
    return {removal.path for removal in plan.removals}


def test_unreferenced_old_things_go_and_everything_else_stays(place, tmp_path, version):
    make_run(place["runs"], tmp_path).close()
    seed_requirements = declared_dependencies(SEED)
    seed_env = make_env(place["envs"], seed_requirements, version, 30 * 24 * HOUR)
    agent_1_env = make_env(place["envs"], sorted([*seed_requirements, "rich==13.0.0"]), version, 30 * 24 * HOUR)
    problem_env = make_env(place["envs"], problem_requirements(()), version, 30 * 24 * HOUR)
    orphan = make_env(place["envs"], ["old-dependency==1.0"], version, 2 * HOUR)
    orphan_fresh = make_env(place["envs"], ["new-dependency==1.0"], version, 60)
    other_python = make_env(place["envs"], seed_requirements, "2.7.18 (an interpreter long gone)", 2 * HOUR)
    dead_build = aged(_mkdir(place["envs"] / ".0123456789abcdef.999999999.partial"), 2 * HOUR)
    live_build = aged(_mkdir(place["envs"] / f".fedcba9876543210.{os.getpid()}.partial"), 2 * HOUR)
    not_an_env = aged(_mkdir(place["envs"] / "notes"), 2 * HOUR)
    stale = make_scratch(place["tmp"], "sica-meta-abc123", 2 * HOUR)
    (stale / "work" / "link").symlink_to(place["outside"])
    fresh = make_scratch(place["tmp"], "sica-agent-def456", 60)
    foreign = make_scratch(place["tmp"], "pytest-of-someone", 2 * HOUR)
    (place["tmp"] / "sica-link").symlink_to(place["outside"], target_is_directory=True)
    creating = aged(_mkdir(place["runs"] / ".r2.creating-0badc0de"), 2 * HOUR)

    plan = plan_cleanup(settings_for(place, tmp_path), time.time(), tmpdir=place["tmp"], min_age_s=HOUR)

    assert plan.refusal is None
    assert removed_paths(plan) == {orphan, other_python, dead_build, stale, creating}
    kinds = {removal.path: removal.kind for removal in plan.removals}
    assert (kinds[orphan], kinds[dead_build], kinds[stale], kinds[creating]) == (
        ENVIRONMENT, PARTIAL_ENVIRONMENT, SCRATCH, PARTIAL_RUN)
    kept = {k.path: k.reason for k in plan.kept}
    assert kept[seed_env] == "used by agent 0"
    assert kept[agent_1_env] == "used by r1:agent-1"
    assert kept[problem_env] == "used by built-in problems"
    assert "last 60 minutes" in kept[orphan_fresh] and "last 60 minutes" in kept[fresh]
    assert f"process {os.getpid()}" in kept[live_build]
    assert not_an_env not in kept and foreign not in kept and place["tmp"] / "sica-link" not in kept
    assert all(removal.size > 0 for removal in plan.removals)
    assert next(r.size for r in plan.removals if r.path == orphan) >= 12000  # the 12 kB module, on disk

    outcomes = list(apply(plan))

    assert [error for _, error in outcomes] == [None] * 5
    for path in removed_paths(plan):
        assert not os.path.lexists(path)
    for path in (seed_env, agent_1_env, problem_env, orphan_fresh, live_build, not_an_env, fresh, foreign,
                 place["tmp"] / "sica-link"):
        assert os.path.lexists(path), path
    assert (place["outside"] / "keep.txt").read_text() == "not sica's\n"  # the links were not followed
    assert [path.name for path in place["envs"].glob(".*.partial")] == [live_build.name]  # none set aside is left


def test_the_problem_environments_kept_are_those_every_benchmark_kind_registers():
    kept = problem_environment_requirements()
    assert {"taskdir:PATH", "bugfix"} <= set(ENVIRONMENTS)
    assert kept[0] == problem_requirements(())  # the task folders' checks: the test runner alone
    assert len(kept) > 1 and all(set(kept[0]) <= set(requirements) for requirements in kept)


def _mkdir(path: Path) -> Path:
    path.mkdir()
    (path / "content").write_text("x\n")
    return path


def test_a_dry_run_plan_removes_nothing(place, tmp_path, version):
    orphan = make_env(place["envs"], ["old-dependency==1.0"], version, 2 * HOUR)
    stale = make_scratch(place["tmp"], "sica-version-1", 2 * HOUR)
    plan = plan_cleanup(settings_for(place, tmp_path), time.time(), tmpdir=place["tmp"], min_age_s=HOUR)
    assert removed_paths(plan) == {orphan, stale}
    assert orphan.is_dir() and stale.is_dir() and plan.size > 0


def test_an_unreadable_run_keeps_every_environment_but_scratch_still_goes(place, tmp_path, version):
    make_run(place["runs"], tmp_path).close()
    broken = place["runs"] / "r2"
    broken.mkdir()
    (broken / DATABASE).write_bytes(b"not a database" * 100)
    orphan = make_env(place["envs"], ["old-dependency==1.0"], version, 2 * HOUR)
    stale = make_scratch(place["tmp"], "sica-meta-1", 2 * HOUR)

    plan = plan_cleanup(settings_for(place, tmp_path), time.time(), tmpdir=place["tmp"], min_age_s=HOUR)

    assert plan.refusal is not None and "\n" not in plan.refusal
    assert str(broken) in plan.refusal and "move it out of" in plan.refusal
    assert removed_paths(plan) == {stale}
    list(apply(plan))
    assert orphan.is_dir() and not stale.exists()


def test_what_a_running_sica_process_may_use_is_kept(place, tmp_path, version):
    """A harness holding the lock (this test process) started before the new folders were used, after the old."""
    ancient = make_scratch(place["tmp"], "sica-gateway-old", 30 * 24 * HOUR)
    recent = make_scratch(place["tmp"], "sica-gateway-new", 0)
    recent_env = make_env(place["envs"], ["used-now==1.0"], version, 0)
    settings = settings_for(place, tmp_path)
    lock = hold_harness_lock(place["tmp"])
    assert lock is not None
    try:
        live = live_harnesses(place["tmp"])
        assert os.getpid() in live.pids and live.since is not None and live.since <= time.time()
        plan = plan_cleanup(settings, time.time(), tmpdir=place["tmp"], min_age_s=0)
    finally:
        os.close(lock)
    assert removed_paths(plan) == {ancient}
    kept = {k.path: k.reason for k in plan.kept}
    assert f"running sica process (pid {os.getpid()})" in kept[recent]
    assert "running sica process" in kept[recent_env]
    assert live_harnesses(place["tmp"]).since is None  # the kernel let go with the descriptor
    assert removed_paths(plan_cleanup(settings, time.time(), tmpdir=place["tmp"], min_age_s=0)) == {
        ancient, recent, recent_env}


def test_a_folder_a_process_works_in_is_kept(place, tmp_path):
    busy = make_scratch(place["tmp"], "sica-task-busy", 2 * HOUR)
    sleeper = subprocess.Popen(["sleep", "60"], cwd=busy / "work")
    try:
        plan = plan_cleanup(settings_for(place, tmp_path), time.time(), tmpdir=place["tmp"], min_age_s=HOUR)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert busy not in removed_paths(plan)
    assert "a process has" in {k.path: k.reason for k in plan.kept}[busy]


def test_an_environment_used_after_the_plan_is_put_back(place, tmp_path, version):
    orphan = make_env(place["envs"], ["old-dependency==1.0"], version, 2 * HOUR)
    plan = plan_cleanup(settings_for(place, tmp_path), time.time(), tmpdir=place["tmp"], min_age_s=HOUR)
    os.utime(orphan / COMPLETE)
    [(removal, error)] = list(apply(plan))
    assert removal.path == orphan and error is not None and "used since" in error
    assert (orphan / COMPLETE).is_file() and not list(place["envs"].glob(".*.partial"))


def test_reusing_an_environment_marks_its_use(place, version):
    env = make_env(place["envs"], [], version, 30 * 24 * HOUR)
    before = (env / COMPLETE).stat().st_mtime
    assert build_environment([], place["envs"], "/nonexistent/uv") == env  # found, so uv is never called
    assert (env / COMPLETE).stat().st_mtime > before + 29 * 24 * HOUR


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_stale_tmpfs_scratch_area_is_unmounted_then_removed(place, tmp_path):
    area = place["tmp"] / "sica-run-tmpfs"
    area.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(area)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (area / "answer.txt").write_text("42\n" * 1000)
        aged(area, 2 * HOUR)
        nested = make_scratch(place["tmp"], "sica-run-nested", 0)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(nested / "work")], check=True)
        aged(nested, 2 * HOUR)
        plan = plan_cleanup(settings_for(place, tmp_path), time.time(), tmpdir=place["tmp"], min_age_s=HOUR)
        [removal] = plan.removals
        assert removal.path == area and removal.mounted
        assert "holds a mount" in {k.path: k.reason for k in plan.kept}[nested]
        assert [error for _, error in apply(plan)] == [None]
        assert not area.exists()
        assert nested.is_dir()
    finally:
        for mount in (area, place["tmp"] / "sica-run-nested" / "work"):
            subprocess.run(["umount", str(mount)], capture_output=True)


def test_every_temporary_folder_of_the_harness_is_named_for_clean():
    """`sica clean` finds scratch by its `sica-` prefix: a temporary folder made in the default temporary folder
    (no `dir=`) under another name would never be cleaned."""
    made = re.compile(r"(?:mkdtemp|TemporaryDirectory)\(([^)]*)\)")
    unnamed = []
    for source in SRC.rglob("*.py"):
        for arguments in made.findall(source.read_text()):
            if "dir=" not in arguments and 'prefix="sica-' not in arguments:
                unnamed.append(f"{source.relative_to(SRC)}: {arguments}")
    assert unnamed == []


def cli_env(place: dict[str, Path], tmp_path: Path) -> dict[str, str]:
    return clean_environ(home=tmp_path) | {"TMPDIR": str(place["tmp"]), "SICA_SOLVE__ENVS_DIR": str(place["envs"]),
                                           "SICA_LOOP__RUNS_DIR": str(place["runs"])}


def test_the_command_shows_then_removes_and_reports_the_space(place, tmp_path, version):
    make_run(place["runs"], tmp_path).close()
    orphan = make_env(place["envs"], ["old-dependency==1.0"], version, 2 * HOUR)
    seed_env = make_env(place["envs"], declared_dependencies(SEED), version, 2 * HOUR)
    stale = make_scratch(place["tmp"], "sica-meta-1", 2 * HOUR)

    dry = run_sica(tmp_path, "clean", "--dry-run", env=cli_env(place, tmp_path), timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert f"would remove  {orphan}" in dry.stdout and f"would remove  {stale}" in dry.stdout
    assert "would free" in dry.stdout and "in 2 folders" in dry.stdout
    assert orphan.is_dir() and stale.is_dir()

    done = run_sica(tmp_path, "clean", env=cli_env(place, tmp_path), timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"removed       {orphan}" in done.stdout and f"removed       {stale}" in done.stdout
    assert re.search(r"freed \d+(\.\d)? [kMG]?B in 2 folders", done.stdout)
    assert not orphan.exists() and not stale.exists() and seed_env.is_dir()


def test_the_command_refuses_environments_of_an_unreadable_run_in_one_line(place, tmp_path, version):
    broken = place["runs"] / "r9"
    (broken / "archive.git").mkdir(parents=True)
    orphan = make_env(place["envs"], ["old-dependency==1.0"], version, 2 * HOUR)
    stale = make_scratch(place["tmp"], "sica-meta-1", 2 * HOUR)
    done = run_sica(tmp_path, "clean", env=cli_env(place, tmp_path), timeout=120)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: cannot read run") and str(broken) in line and "repair the run" in line
    assert orphan.is_dir() and not stale.exists()


def test_the_harness_lock_is_held_by_other_commands_only(place, tmp_path):
    """A running `sica` command (here one running `sleep` in a sandbox) holds the lock; clean sees its pid."""
    env = cli_env(place, tmp_path)
    command = subprocess.Popen([sys.executable, "-m", "sica", "sandbox", "run", "--backend", "none", "--unsafe",
                                "--", "sleep", "60"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 60
        while command.pid not in live_harnesses(place["tmp"]).pids and time.time() < deadline:
            assert command.poll() is None
            time.sleep(0.2)
        assert command.pid in live_harnesses(place["tmp"]).pids
        done = run_sica(tmp_path, "clean", "--dry-run", env=env, timeout=120)
        assert done.returncode == 0 and f"sica processes are running (pid {command.pid})" in done.stderr
    finally:
        os.killpg(command.pid, signal.SIGKILL)
        command.wait()
    assert live_harnesses(place["tmp"]).since is None  # killed with -9: the kernel let go of its lock
