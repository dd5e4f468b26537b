"""Running shell commands in the working directory, with a time limit and a cap on the output shown.

A command runs as `bash -c COMMAND` in its own process group with standard input closed (an interactive
program reads end-of-file instead of waiting forever). On timeout the whole group is stopped: SIGTERM, then
SIGKILL after a short grace, so children that ignore SIGTERM die too. The environment is inherited: the agent
itself runs in the harness's sandbox, which chose it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from typing import Any

from sica_agent.tools.base import ToolContext, ToolError, ToolResult, ToolSpec
from sica_agent.tools.paths import workdir_root

DEFAULT_TIMEOUT_S = 60
MAX_TIMEOUT_S = 600

KILL_GRACE_S = 0.5
"""Time a timed-out command's processes get between SIGTERM and SIGKILL."""

READ_AFTER_KILL_S = 1.0
"""How long to keep reading output after SIGKILL. A process that left the group (setsid) survives the kill and
may hold the output open; reading stops then, and the sandbox ends that process when the run ends."""

# Long output keeps its first and last lines, where commands say what they do and how they ended; output of
# very long lines is then also cut to its first and last characters.
KEEP_HEAD_LINES = 100
KEEP_TAIL_LINES = 100
KEEP_HEAD_CHARS = 8_000
KEEP_TAIL_CHARS = 8_000


@dataclass(frozen=True)
class CommandOutcome:
    """How a command ended: its exit code (None if it was still running at the timeout) and its output."""

    exit_code: int | None
    output: str
    timed_out: bool


class RunTool:
    """Run a shell command in the working directory."""

    spec = ToolSpec(
        name="run",
        description="Run a shell command with bash in the working directory and show its exit code and output. "
        "Use it to run tests, scripts and programs such as ls, grep, git or python.",
        parameters={
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "The command, e.g. python -m pytest -q"},
                "timeout_s": {
                    "type": "integer",
                    "description": f"Seconds before the command is stopped (at most {MAX_TIMEOUT_S}).",
                    "default": DEFAULT_TIMEOUT_S,
                },
            },
            "required": ["command"],
            "additionalProperties": False,
        },
    )

    def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        command = arguments["command"]
        if not command.strip():
            raise ToolError("command is empty; give the shell command to run")
        timeout_s = arguments.get("timeout_s", DEFAULT_TIMEOUT_S)
        if timeout_s < 1:
            raise ToolError(f"timeout_s={timeout_s} is too small; it must be between 1 and {MAX_TIMEOUT_S}")
        timeout_s = min(timeout_s, MAX_TIMEOUT_S)
        outcome = run_command(command, context, timeout_s)
        output = head_and_tail(outcome.output.rstrip()) if outcome.output.strip() else "(no output)"
        if not outcome.timed_out:
            return ToolResult(f"exit code: {_describe_exit(outcome.exit_code)}\n{output}")
        if outcome.exit_code is None:
            note = (
                f"timed out after {timeout_s} s: the command and the processes it started were stopped. "
                f"If it needs longer, run it again with a larger timeout_s (at most {MAX_TIMEOUT_S})."
            )
        else:
            note = (
                f"the command ended with exit code {_describe_exit(outcome.exit_code)}, but a process it "
                f"started in the background kept its output open and was stopped after {timeout_s} s. "
                "Send the output of background processes to a file."
            )
        return ToolResult(f"{note}\noutput:\n{output}", ok=False)


def run_command(command: str, context: ToolContext, timeout_s: float) -> CommandOutcome:
    """Run `command` with bash in the working directory; stop its whole process group after `timeout_s`."""
    process = subprocess.Popen(
        ["bash", "-c", command],
        cwd=workdir_root(context),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout_s)
        return CommandOutcome(process.returncode, _decode(output), timed_out=False)
    except subprocess.TimeoutExpired:
        exit_code = process.poll()
        return CommandOutcome(exit_code, _decode(_stop_group(process)), timed_out=True)


def _stop_group(process: subprocess.Popen[bytes]) -> bytes:
    """SIGTERM the process group, SIGKILL it after KILL_GRACE_S, and return all the output read."""
    _signal_group(process, signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        output = None
    _signal_group(process, signal.SIGKILL)
    if output is None:
        try:
            output, _ = process.communicate(timeout=READ_AFTER_KILL_S)
        except subprocess.TimeoutExpired as still_open:
            output = still_open.output or b""
            if process.stdout is not None:
                process.stdout.close()
            process.wait()
    return output


def _signal_group(process: subprocess.Popen[bytes], signal_number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal_number)


def _decode(output: bytes) -> str:
    return output.decode("utf-8", errors="replace")


def _describe_exit(exit_code: int | None) -> str:
    """`0`, `1`, or `-9 (killed by SIGKILL)` for a process ended by a signal."""
    if exit_code is None or exit_code >= 0:
        return str(exit_code)
    try:
        return f"{exit_code} (killed by {signal.Signals(-exit_code).name})"
    except ValueError:
        return f"{exit_code} (killed by signal {-exit_code})"


def head_and_tail(text: str) -> str:
    """`text` with its middle cut out when it is long, saying how many lines or characters were cut."""
    lines = text.split("\n")
    if len(lines) > KEEP_HEAD_LINES + KEEP_TAIL_LINES:
        cut = len(lines) - KEEP_HEAD_LINES - KEEP_TAIL_LINES
        lines = [*lines[:KEEP_HEAD_LINES], f"[... {cut} lines cut ...]", *lines[-KEEP_TAIL_LINES:]]
        text = "\n".join(lines)
    if len(text) > KEEP_HEAD_CHARS + KEEP_TAIL_CHARS:
        cut = len(text) - KEEP_HEAD_CHARS - KEEP_TAIL_CHARS
        text = f"{text[:KEEP_HEAD_CHARS]}\n[... {cut} characters cut ...]\n{text[-KEEP_TAIL_CHARS:]}"
    return text
