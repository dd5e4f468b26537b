"""Choosing the runner at the command line: `--runner local` (the default) needs no Ray; `--runner ray` without
Ray installed, with an address nothing listens at, or with `--ray-address` but no ray runner, is one line naming
the problem and the fix."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from sica.cli.state import UserError, with_runner
from sica.config import load_settings
from tests.support.cli import clean_environ, run_sica
from tests.support.config import write_eval_config
from tests.support.evals import make_tasks


def test_the_local_runner_is_the_default_and_imports_no_ray():
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, sica.cli, sica.cli.eval_cmd, sica.cli.improve_cmd, sica.runner.evaluate,"
         " sica.loop.improve; print('ray' in sys.modules)"], capture_output=True, text=True, env=clean_environ())
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "False"


def test_runner_choices_are_checked_in_one_line(tmp_path, monkeypatch):
    write_eval_config(tmp_path)
    settings = load_settings(tmp_path / "sica.toml", {})
    assert settings.runner.kind == "local"
    assert with_runner(settings, None, None).runner.kind == "local"
    chosen = with_runner(settings, "ray", "10.0.0.1:6379").runner
    assert (chosen.kind, chosen.address) == ("ray", "10.0.0.1:6379")
    with pytest.raises(UserError, match="unknown runner 'slurm': use one of local, ray"):
        with_runner(settings, "slurm", None)
    with pytest.raises(UserError, match="--ray-address is for the ray runner: add --runner ray"):
        with_runner(settings, "local", "10.0.0.1:6379")

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real_find_spec(name, *a))
    with pytest.raises(UserError) as caught:
        with_runner(settings, "ray", None)
    message = str(caught.value)
    assert "\n" not in message and "needs Ray, which is not installed" in message
    assert "uv sync --extra ray" in message and "--runner local" in message


def test_an_unreachable_cluster_is_one_line_naming_the_address_and_the_fix(tmp_path):
    make_tasks(tmp_path / "tasks", {"alpha": "ok"})
    write_eval_config(tmp_path)
    done = run_sica(tmp_path, "eval", "-b", f"taskdir:{tmp_path / 'tasks'}", "--runner", "ray", "--ray-address",
                    "127.0.0.1:1", timeout=120)
    assert done.returncode != 0
    error = done.stderr.strip().splitlines()[-1]
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in error and "--ray-address" in error, done.stderr
    assert "Traceback" not in done.stderr
    bad = run_sica(tmp_path, "eval", "-b", f"taskdir:{tmp_path / 'tasks'}", "--runner", "ray", "--ray-address",
                   "nowhere", timeout=120)
    assert bad.returncode != 0 and "'nowhere' is not a Ray cluster address" in bad.stderr, bad.stderr
