"""run: exit codes, combined output, truncation, timeouts that kill the whole process group."""

import time
from pathlib import Path

import pytest

from sica_agent.tools import ALL_TOOLS, run_tool
from sica_agent.tools.base import ToolContext
from sica_agent.tools.shell import KEEP_HEAD_CHARS, KEEP_HEAD_LINES, KEEP_TAIL_CHARS, run_command


@pytest.fixture
def context(tmp_path: Path) -> ToolContext:
    return ToolContext(tmp_path)


def call(context: ToolContext, name: str, **arguments):
    return run_tool(ALL_TOOLS[name], arguments, context)


def is_gone(pid: int, within_s: float = 2.0) -> bool:
    """True when the process stops running within a moment (SIGKILL is delivered asynchronously; a zombie
    waiting for its parent counts as gone)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
                return True
        except (FileNotFoundError, ProcessLookupError):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def test_exit_code_and_combined_output(context):
    result = call(context, "run", command="echo out; echo err >&2; exit 3")
    assert result.ok
    assert result.output == "exit code: 3\nout\nerr"


def test_runs_in_the_workdir_with_the_inherited_environment(context, monkeypatch):
    monkeypatch.setenv("SICA_TOOL_TEST", "inherited")
    output = call(context, "run", command="pwd; echo $SICA_TOOL_TEST").output
    assert output.splitlines()[1:] == [str(context.workdir.resolve()), "inherited"]


def test_stdin_is_closed_so_interactive_commands_end(context):
    started = time.monotonic()
    result = call(context, "run", command="cat; read line || echo got end-of-file")
    assert result.output == "exit code: 0\ngot end-of-file"
    assert time.monotonic() - started < 5


def test_no_output_and_signal_deaths_are_described(context):
    assert call(context, "run", command="true").output == "exit code: 0\n(no output)"
    assert "killed by SIGKILL" in call(context, "run", command="kill -9 $$").output


def test_long_output_keeps_head_and_tail(context):
    output = call(context, "run", command="seq 1 1000").output
    lines = output.splitlines()
    assert lines[1] == "1" and lines[-1] == "1000"
    assert f"[... {1000 - 2 * KEEP_HEAD_LINES} lines cut ...]" in output
    assert "500\n" not in output


def test_long_lines_are_cut_in_the_middle(context):
    output = call(context, "run", command="python3 -c \"print('a' * 50000 + 'END')\"").output
    assert output.endswith("END") and "characters cut" in output
    assert len(output) < KEEP_HEAD_CHARS + KEEP_TAIL_CHARS + 200


def test_timeout_is_reported(context):
    result = call(context, "run", command="echo started; sleep 20", timeout_s=1)
    assert not result.ok
    assert "timed out after 1 s" in result.output and "started" in result.output


def test_timeout_kills_children_that_ignore_sigterm(context):
    script = ("import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "open('child.pid', 'w').write(str(os.getpid())); print('ready', flush=True); time.sleep(30)")
    command = f"trap '' TERM; python3 -c \"{script}\"; sleep 30"
    started = time.monotonic()
    outcome = run_command(command, context, timeout_s=0.5)
    assert outcome.timed_out and outcome.exit_code is None and "ready" in outcome.output
    assert time.monotonic() - started < 5
    assert is_gone(int((context.workdir / "child.pid").read_text()))


def test_background_process_holding_the_output_is_stopped(context):
    outcome = run_command("(sleep 30; echo never) & echo main done", context, timeout_s=0.5)
    assert outcome.timed_out and outcome.exit_code == 0 and "main done" in outcome.output


def test_timeout_and_command_arguments_are_checked(context):
    result = call(context, "run", command="true", timeout_s=0)
    assert not result.ok and "between 1 and 600" in result.output
    result = call(context, "run", command="  ")
    assert not result.ok and "empty" in result.output



def test_a_process_that_left_the_group_does_not_hang_the_tool(context):
    started = time.monotonic()
    outcome = run_command("echo before; setsid sleep 3 & sleep 30", context, timeout_s=0.5)
    assert outcome.timed_out and "before" in outcome.output
    assert time.monotonic() - started < 2.5
