"""Agent 0 as the loop will treat it: its environment is built from its own pyproject (wheels only, cached),
and its own test suite passes in that environment; and a built sica wheel carries it and runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import uv

from sica.config import default_envs_dir
from sica.runner.environments import declared_dependencies, ensure_environment, seed_agent_dir
from tests.support.config import scripted_config, write_config

ENVS = default_envs_dir(os.geteuid())


def test_seed_dependencies_are_pinned():
    dependencies = declared_dependencies(seed_agent_dir())
    assert dependencies and all("==" in d for d in dependencies)


def test_environment_is_cached_by_its_dependencies(tmp_path):
    first = ensure_environment(seed_agent_dir(), ENVS, uv.find_uv_bin())
    assert ensure_environment(seed_agent_dir(), ENVS, uv.find_uv_bin()) == first
    other = tmp_path / "agent"
    (other / "sica_agent").mkdir(parents=True)
    (other / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1"\ndependencies = []\n')
    assert ensure_environment(other, tmp_path / "envs", uv.find_uv_bin()) != first


def test_seed_agent_passes_its_own_tests_in_its_own_environment():
    env = ensure_environment(seed_agent_dir(), ENVS, uv.find_uv_bin())
    done = subprocess.run([str(env / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=seed_agent_dir(), capture_output=True, text=True, timeout=300,
                          env={"PATH": f"{env / 'bin'}:/usr/bin:/bin", "PYTHONPATH": str(seed_agent_dir()),
                               "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/tmp"})
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout.splitlines()[-1]


@pytest.mark.slow
def test_a_built_wheel_carries_the_seed_and_solves_with_it(tmp_path):
    project = Path(__file__).parents[2]
    uv_bin = uv.find_uv_bin()
    subprocess.run([uv_bin, "build", "--wheel", "--quiet", "--out-dir", str(tmp_path / "dist"), str(project)],
                   check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("sica-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([uv_bin, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    subprocess.run([uv_bin, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel)],
                   check=True, capture_output=True)
    seed = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "from sica.runner.environments import seed_agent_dir; print(seed_agent_dir())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert seed.startswith(str(venv)) and Path(seed, "sica_agent", "agent.py").is_file()

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "hello.py").write_text("print('helo')\n")
    script = [{"tool_calls": [{"name": "replace", "arguments": {"path": "hello.py", "old": "helo", "new": "hello"}}]},
              {"tool_calls": [{"name": "complete", "arguments": {"summary": "spelling fixed"}}]}]
    write_config(tmp_path, scripted_config({"fake": {"price": None}}, solve={"solves_dir": "solves"}),
                 {"script.jsonl": script})
    done = subprocess.run([str(venv / "bin" / "sica"), "solve", "Fix the spelling.", "--repo", str(repo),
                           ], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert "+print('hello')" in done.stdout
