"""`sica solve`: run an agent version on a user's repository or a task folder, follow it, and keep its diff.

One folder per run under `[solve] solves_dir`: `task.md`, `workdir/` (the copy the agent works on), `logdir/`
(events.jsonl, inbox/, answer.txt), `baseline.git` (the harness's own record of the starting tree),
`diff.patch`, `ledger.sqlite` (the gateway's trusted account of every model call) and `outcome.json`.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import uv

from sica.config import ROLES, Settings
from sica.events import EventReader
from sica.gateway import Listen, run_gateway
from sica.gateway.accounts import Account
from sica.gateway.pricing import nano_to_usd
from sica.runner.diffs import copy_tree, record_baseline, take_diff
from sica.runner.environments import ensure_environment


@dataclass(frozen=True)
class SolveRequest:
    """What to solve, where, and with which agent and model."""

    statement: str
    repo: Path | None
    task_dir: Path | None
    agent_dir: Path
    model: str | None


@dataclass
class Progress:
    """What the live display shows, refreshed while the agent runs."""

    step: int = 0
    tool: str = ""
    tokens: int = 0
    cost_usd: float = 0.0
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class SolveOutcome:
    """How a run ended: status and summary (the agent's own), cost and tokens (the gateway's), the diff."""

    id: str
    folder: str
    status: str
    summary: str
    answer: str | None
    cost_usd: float
    input_tokens: int
    output_tokens: int
    seconds: float
    diff: str
    check: str | None


def models_for_agent(settings: Settings, model: str | None) -> dict[str, dict[str, object]]:
    """`SICA_AGENT_MODELS`: role → alias, wire format, tool mode and context window."""
    roles = {}
    for role in ROLES:
        alias_name = model or settings.role_alias(role)
        alias = settings.models[alias_name]
        roles[role] = {"alias": alias_name, "wire": alias.wire_format, "tool_mode": alias.effective_tool_mode,
                       "context_window": alias.context_window}
    return roles


def agent_environ(env: Path, agent_dir: Path, home: Path, extra_path: list[Path],
                  contract: Mapping[str, str]) -> dict[str, str]:
    """The agent process's whole environment: an allow-list, never the harness's own environment."""
    path = ":".join([*(str(p) for p in extra_path), str(env / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
    return {**contract, "HOME": str(home), "PATH": path, "LANG": "C.UTF-8", "PYTHONPATH": str(agent_dir),
            "PYTHONDONTWRITEBYTECODE": "1", "GIT_AUTHOR_NAME": "sica agent", "GIT_AUTHOR_EMAIL": "agent@sica.invalid",
            "GIT_COMMITTER_NAME": "sica agent", "GIT_COMMITTER_EMAIL": "agent@sica.invalid"}


def _contract(settings: Settings, solve_id: str, socket: Path, token: str,
              models: dict[str, dict[str, object]]) -> dict[str, str]:
    """The `SICA_AGENT_*` variables of the agent contract."""
    contract = {"SICA_AGENT_GATEWAY": f"unix:{socket}", "SICA_AGENT_TOKEN": token,
                "SICA_AGENT_MODELS": json.dumps(models), "SICA_AGENT_RUN_ID": solve_id,
                "SICA_AGENT_PROBLEM_ID": "solve", "SICA_AGENT_TIME_LIMIT_S": str(settings.solve.time_limit_s)}
    if settings.solve.budget_usd is not None:
        contract["SICA_AGENT_COST_LIMIT_USD"] = str(settings.solve.budget_usd)
    return contract


class SolveError(Exception):
    """A run that could not start (bad task folder, unusable agent); one line."""


def prepare_workdir(request: SolveRequest, folder: Path) -> tuple[Path, list[Path]]:
    """Lay out the starting tree; returns the workdir and folders to put first on PATH (the repo's venv)."""
    workdir = folder / "workdir"
    if request.task_dir is not None:
        workdir.mkdir()
        done = subprocess.run(["bash", "build.sh", str(workdir)], cwd=request.task_dir, capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise SolveError(f"{request.task_dir}/build.sh failed (exit {done.returncode}): "
                             f"{' '.join(done.stderr.split())[-300:]}")
        return workdir, []
    assert request.repo is not None
    copy_tree(request.repo, workdir)
    venv = request.repo / ".venv" / "bin"
    return workdir, [venv] if venv.is_dir() else []


async def run_solve(settings: Settings, environ: Mapping[str, str], request: SolveRequest,
                    on_progress: Callable[[Progress], None], stop: asyncio.Event) -> SolveOutcome:
    """Run the agent to its end (or until `stop` is set: then it is cancelled, with a grace period)."""
    solve_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
    folder = settings.solve.solves_dir.expanduser() / solve_id
    folder.mkdir(parents=True)
    (folder / "task.md").write_text(request.statement, encoding="utf-8")
    workdir, extra_path = prepare_workdir(request, folder)
    record_baseline(workdir, folder / "baseline.git")
    logdir, home = folder / "logdir", folder / "home"
    logdir.mkdir()
    home.mkdir()
    env = await asyncio.to_thread(ensure_environment, request.agent_dir, settings.solve.envs_dir.expanduser(),
                                  uv.find_uv_bin())
    models = models_for_agent(settings, request.model)
    used = settings.with_only({entry["alias"] for entry in models.values()})  # type: ignore[misc]
    started = time.monotonic()
    # Unix socket paths are limited to about 100 bytes, so the socket lives in a short folder of its own.
    socket_dir = Path(tempfile.mkdtemp(prefix="sica-gw-"))
    socket_dir.chmod(0o755)
    socket = socket_dir / "gateway.sock"
    try:
        async with run_gateway(used, environ, folder / "ledger.sqlite", Listen(uds=socket),
                               log_dir=folder) as running:
            account = running.gateway.open_account(f"solve {solve_id}", limit_usd=settings.solve.budget_usd)
            contract = _contract(settings, solve_id, socket, account.token, models)
            with (folder / "agent.log").open("wb") as log:
                process = await asyncio.create_subprocess_exec(
                    str(env / "bin" / "python"), "-m", "sica_agent", "solve", "--task", str(folder / "task.md"),
                    "--workdir", str(workdir), "--logdir", str(logdir), cwd=workdir, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=log, env=agent_environ(env, request.agent_dir, home, extra_path, contract),
                    start_new_session=True)
                ended = await _follow(process, logdir, lambda: running.gateway.account(account.id), started,
                                      on_progress, stop, settings.solve.cancel_grace_s)
            cost = running.gateway.account(account.id).spent_nano
            rows = list(running.gateway.ledger.calls(account.id))
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
    tokens_in, tokens_out = sum(r["input_tokens"] for r in rows), sum(r["output_tokens"] for r in rows)
    diff = take_diff(workdir, folder / "baseline.git")
    (folder / "diff.patch").write_text(diff, encoding="utf-8")
    answer_file = logdir / "answer.txt"
    answer = answer_file.read_text(encoding="utf-8") if answer_file.exists() else None
    check = _check(request.task_dir, workdir, folder, answer, env / "bin") if request.task_dir else None
    outcome = SolveOutcome(solve_id, str(folder), ended[0], ended[1], answer, nano_to_usd(cost), tokens_in,
                           tokens_out, round(time.monotonic() - started, 1), diff, check)
    (folder / "outcome.json").write_text(json.dumps({k: v for k, v in asdict(outcome).items() if k != "diff"},
                                                    indent=2), encoding="utf-8")
    return outcome


@dataclass
class _Watch:
    """What following the events has learnt: the top agent, how it ended, and the progress to show."""

    progress: Progress
    top_agent: str | None = None
    ended: tuple[str, str] | None = None

    def absorb(self, reader: EventReader) -> None:
        for event in reader.new_events():
            if event.type == "agent_start" and event.parent_id is None and self.top_agent is None:
                self.top_agent = event.agent_id
            elif event.type == "llm_call":
                self.progress.step += 1
            elif event.type == "tool_call":
                self.progress.tool = str(event.data.get("tool", ""))
            elif event.type == "agent_end" and event.agent_id == self.top_agent:
                self.ended = (str(event.data.get("status", "error")), str(event.data.get("summary", "")))


async def _follow(process: asyncio.subprocess.Process, logdir: Path, account: Callable[[], Account],
                  started: float, on_progress: Callable[[Progress], None], stop: asyncio.Event,
                  grace_s: float) -> tuple[str, str]:
    """Follow the agent until it exits; returns (status, summary) from its top agent's `agent_end`."""
    reader = EventReader(logdir / "events.jsonl")
    watch = _Watch(Progress())
    cancel_sent_at: float | None = None
    while process.returncode is None:
        watch.absorb(reader)
        state = account()
        watch.progress.cost_usd, watch.progress.tokens = nano_to_usd(state.spent_nano), state.spent_tokens
        watch.progress.elapsed_s = time.monotonic() - started
        on_progress(watch.progress)
        if stop.is_set() and cancel_sent_at is None:
            cancel_sent_at = time.monotonic()
            _send_cancel(logdir, watch.top_agent or "main")
        if cancel_sent_at is not None and time.monotonic() - cancel_sent_at > grace_s:
            _kill_group(process)
        try:
            await asyncio.wait_for(process.wait(), timeout=0.25)
        except TimeoutError:
            pass
    watch.absorb(reader)
    if watch.ended is not None:
        return watch.ended
    status = "cancelled" if cancel_sent_at is not None else "error"
    return status, (f"the agent process exited with code {process.returncode} without reporting an end (see "
                    f"{logdir.parent / 'agent.log'})")


def _send_cancel(logdir: Path, agent_id: str) -> None:
    """Ask the agent to stop, through its inbox (written atomically: temp file, then rename)."""
    inbox = logdir / "inbox"
    inbox.mkdir(exist_ok=True)
    sequence = len(list(inbox.glob("*.json")))
    temp = inbox / f".{sequence:06d}.tmp"
    temp.write_text(json.dumps({"type": "cancel", "agent_id": agent_id, "text": "stopped by the user"}))
    os.replace(temp, inbox / f"{sequence:06d}.json")


def _kill_group(process: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(process.pid, 9)
    except ProcessLookupError:
        pass


def _check(task_dir: Path, workdir: Path, folder: Path, answer: str | None, tools: Path) -> str:
    """Run the task's check.sh on a copy of the final tree, with the agent environment's tools (python, pytest)
    first on PATH; 'solved' or 'not solved', with the score it printed, if any."""
    checked = folder / "checked"
    shutil.copytree(workdir, checked, symlinks=True)
    environ = {"PATH": f"{tools}:/usr/local/bin:/usr/bin:/bin", "HOME": str(folder / "home"), "LANG": "C.UTF-8"}
    done = subprocess.run(["bash", str(task_dir / "check.sh"), str(checked), *([answer] if answer else [])],
                          cwd=task_dir, capture_output=True, text=True, timeout=600, env=environ)
    lines = done.stdout.strip().splitlines()
    score = lines[-1].removeprefix("score:").strip() if lines and lines[-1].startswith("score:") else None
    verdict = "solved" if done.returncode == 0 else "not solved"
    return f"{verdict} (score {score})" if score else verdict
