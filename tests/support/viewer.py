"""A run for the viewer's tests, made by a scripted `sica improve` whose agents write markup and script into
everything they can (descriptions, tool arguments, summaries), and `sica view` served as a real process."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.cli import clean_environ, run_sica
from tests.support.config import write_improve_config
from tests.support.evals import make_tasks

#: What a hostile agent writes: each would set `window.__pwned` if a page let it run.
HOSTILE = (
    '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
    '<a href="javascript:window.__pwned=3">click</a>'
)
#: A provider key in the environment of the served viewer: it must never reach a page.
FAKE_KEY = "sk-ant-viewer-test-0123456789abcdef"


def hostile_scripts(latency_s: float = 0.0) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The meta agent's script (a description with `HOSTILE` in it) and the task agent's (solves a task, with
    `HOSTILE` in its summary); each reply takes `latency_s`."""
    meta = [
        {
            "tool_calls": [
                {
                    "name": "create",
                    "arguments": {"path": "description.txt", "content": f"agent 1: plans first {HOSTILE}\n"},
                }
            ]
        },
        {"tool_calls": [{"name": "complete", "arguments": {"summary": f"planned {HOSTILE}"}}]},
    ]
    task = [
        {
            "tool_calls": [{"name": "create", "arguments": {"path": "done.txt", "content": "ok\n"}}],
            "usage": {"input": 1000, "output": 20},
            "latency_s": latency_s,
        },
        {
            "tool_calls": [{"name": "complete", "arguments": {"summary": f"wrote done.txt {HOSTILE}"}}],
            "usage": {"input": 1100, "output": 10},
            "latency_s": latency_s,
        },
    ]
    return meta, task


def prepare(home: Path, latency_s: float = 0.0) -> None:
    """Tasks (two solvable, one not) and the configuration of a scripted `sica improve` in `home`."""
    make_tasks(home / "tasks", {"alpha": "ok", "beta": "ok", "gamma": "other"})
    meta, task = hostile_scripts(latency_s)
    write_improve_config(home, meta, task)


def improve_args(home: Path, name: str, iterations: int) -> list[str]:
    return [
        "improve",
        "-b",
        f"taskdir:{home / 'tasks'}",
        "--iterations",
        str(iterations),
        "--model",
        "task",
        "--run",
        name,
    ]


def scripted_run(home: Path, name: str = "demo", iterations: int = 2) -> Path:
    """Run the scripted `sica improve` in `home` to its end; the run's folder."""
    prepare(home)
    done = run_sica(home, *improve_args(home, name, iterations))
    assert done.returncode == 0, done.stderr
    return home / "runs" / name


@contextmanager
def served(home: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`sica view ARGS --port 0` started in `home` as a user would; the address it printed, until it is stopped."""
    environ = (env or clean_environ()) | {"ANTHROPIC_API_KEY": FAKE_KEY, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "sica", "view", *args, "--port", "0"],
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"http://\S+", line)
        if found is None:
            process.kill()
            raise AssertionError(f"sica view printed {line!r}; errors: {process.communicate()[1]}")
        yield found.group(0)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_file(pattern: str, root: Path, timeout: float) -> Path:
    """The first file under `root` matching `pattern`, once there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(root.glob(pattern)) if root.is_dir() else []
        if found:
            return found[0]
        time.sleep(0.1)
    raise TimeoutError(f"no {pattern} under {root} after {timeout} s")
