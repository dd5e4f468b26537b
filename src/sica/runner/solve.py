"""`sica solve`: run an agent version on a user's repository or a task folder, follow it, and keep its diff.

While it runs, the agent works in a size-capped scratch area (a tmpfs where the harness may mount one) that the
sandbox user can reach; afterwards one folder per run is kept under `[solve] solves_dir`: `task.md`,
`workdir/` and `logdir/` (events.jsonl, inbox/, answer.txt) as the agent left them, `baseline.git` (the
harness's own record of the starting tree), `diff.patch`, `agent.log`, `ledger.sqlite` (the gateway's trusted
account of every model call) and `outcome.json`; `live.json` points at the live folders while the run lasts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import uv

from sica.benchmarks.taskdir import task_problem
from sica.config import ROLES, Settings
from sica.events import EventReader
from sica.gateway import Listen, run_gateway
from sica.gateway.accounts import Account
from sica.gateway.pricing import nano_to_usd
from sica.runner.diffs import copy_tree, record_baseline, take_diff
from sica.runner.environments import ensure_environment
from sica.sandbox import Limits, Sandbox, SandboxResult, SandboxSpec, open_sandbox
from sica.sandbox.base import SandboxError
from sica.sandbox.mounts import check_reachable
from sica.sandbox.scratch import ScratchArea


@dataclass(frozen=True)
class SolveRequest:
    """What to solve, where, and with which agent and model."""

    statement: str
    repo: Path | None
    task_dir: Path | None
    agent_dir: Path
    model: str | None
    sandbox: str = "bwrap"


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


def agent_environment(env: Path, code: Path, extra_path: list[Path], contract: Mapping[str, str]) -> dict[str, str]:
    """The agent's environment: an allow-list, never the harness's own (the backend adds HOME and LANG)."""
    path = ":".join([*(str(p) for p in extra_path), str(env / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
    return {**contract, "PATH": path, "PYTHONPATH": str(code), "PYTHONDONTWRITEBYTECODE": "1",
            "GIT_AUTHOR_NAME": "sica agent", "GIT_AUTHOR_EMAIL": "agent@sica.invalid",
            "GIT_COMMITTER_NAME": "sica agent", "GIT_COMMITTER_EMAIL": "agent@sica.invalid"}


def _contract(settings: Settings, solve_id: str, gateway: str, token: str,
              models: dict[str, dict[str, object]]) -> dict[str, str]:
    """The `SICA_AGENT_*` variables of the agent contract."""
    contract = {"SICA_AGENT_GATEWAY": gateway, "SICA_AGENT_TOKEN": token, "SICA_AGENT_MODELS": json.dumps(models),
                "SICA_AGENT_RUN_ID": solve_id, "SICA_AGENT_PROBLEM_ID": "solve",
                "SICA_AGENT_TIME_LIMIT_S": str(settings.solve.time_limit_s)}
    if settings.solve.budget_usd is not None:
        contract["SICA_AGENT_COST_LIMIT_USD"] = str(settings.solve.budget_usd)
    return contract


def prepare_workdir(request: SolveRequest, area: Path) -> tuple[Path, list[Path]]:
    """Lay out the starting tree; returns the workdir and folders to put first on PATH (the repo's venv, when
    the sandbox can reach it)."""
    workdir = area / "workdir"
    if request.task_dir is not None:
        workdir.mkdir()
        task_problem(request.task_dir, "taskdir").lay_out(workdir)
        return workdir, []
    assert request.repo is not None
    copy_tree(request.repo, workdir)
    venv = request.repo / ".venv"
    try:
        check_reachable(venv)
    except SandboxError:
        return workdir, []
    return workdir, [venv / "bin"] if (venv / "bin").is_dir() else []


@dataclass(frozen=True)
class RunFolders:
    """Where one run's pieces live in its scratch area (what the sandbox mounts)."""

    workdir: Path
    logdir: Path
    code: Path
    task: Path
    gateway_dir: Path
    extra_path: list[Path]


def lay_out_run(request: SolveRequest, area: Path, folder: Path) -> RunFolders:
    """Fill the scratch area: the starting tree (recorded in the harness's baseline), the agent's code, the task."""
    workdir, extra_path = prepare_workdir(request, area)
    record_baseline(workdir, folder / "baseline.git")
    run = RunFolders(workdir, area / "logdir", area / "agent", area / "task", area / "gateway", extra_path)
    for made in (run.logdir, run.task, run.gateway_dir):
        made.mkdir(mode=0o755)
    copy_tree(request.agent_dir, run.code)
    shutil.copy(folder / "task.md", run.task / "task.md")
    return run


def agent_spec(settings: Settings, sandbox: Sandbox, run: RunFolders, env: Path, solve_id: str, token: str,
               models: dict[str, dict[str, object]]) -> SandboxSpec:
    """The sandboxed `python -m sica_agent solve` of the contract: mounts, environment and limits."""
    limits = Limits(wall_s=settings.solve.time_limit_s + settings.solve.cancel_grace_s + 60, cpu_s=None,
                    memory_mb=settings.solve.memory_mb, tmp_mb=settings.solve.tmp_mb)
    spec = SandboxSpec(command=(), workdir=run.workdir, logdir=run.logdir, gateway_dir=run.gateway_dir,
                       readonly=(env, run.code, run.task, *(p.parent for p in run.extra_path)), limits=limits)
    view = sandbox.inside(spec)
    contract = _contract(settings, solve_id, f"unix:{view.gateway_dir}/gateway.sock", token, models)
    return dataclasses.replace(spec, environment=agent_environment(env, run.code, run.extra_path, contract),
                               command=(str(env / "bin" / "python"), "-m", "sica_agent", "solve", "--task",
                                        str(run.task / "task.md"), "--workdir", str(view.workdir), "--logdir",
                                        str(view.logdir)))


async def run_solve(settings: Settings, environ: Mapping[str, str], request: SolveRequest,
                    on_progress: Callable[[Progress], None], stop: asyncio.Event) -> SolveOutcome:
    """Run the agent to its end (or until `stop` is set: then it is cancelled, with a grace period)."""
    sandbox = open_sandbox(request.sandbox, allow_unsafe=request.sandbox == "none")
    solve_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
    folder = settings.solve.solves_dir.expanduser() / solve_id
    folder.mkdir(parents=True)
    (folder / "task.md").write_text(request.statement, encoding="utf-8")
    env = await asyncio.to_thread(ensure_environment, request.agent_dir, settings.solve.envs_dir.expanduser(),
                                  uv.find_uv_bin())
    check_reachable(env)
    models = models_for_agent(settings, request.model)
    used = settings.with_only({str(entry["alias"]) for entry in models.values()})
    with ScratchArea(settings.solve.scratch_mb) as scratch:
        run = lay_out_run(request, scratch.path, folder)
        # While the run lasts, its live folders are in the scratch area; followers find them here.
        (folder / "live.json").write_text(json.dumps({"workdir": str(run.workdir), "logdir": str(run.logdir)}))
        started = time.monotonic()
        async with run_gateway(used, environ, folder / "ledger.sqlite",
                               Listen(uds=run.gateway_dir / "gateway.sock"), log_dir=folder) as running:
            account = running.gateway.open_account(f"solve {solve_id}", limit_usd=settings.solve.budget_usd)
            spec = agent_spec(settings, sandbox, run, env, solve_id, account.token, models)
            halt = threading.Event()
            agent_run = asyncio.ensure_future(asyncio.to_thread(sandbox.run, spec, halt))
            watch = await _follow(agent_run, run.logdir, lambda: running.gateway.account(account.id), started,
                                  on_progress, stop, settings.solve.cancel_grace_s, halt)
            result = agent_run.result()
            cost = running.gateway.account(account.id).spent_nano
            rows = list(running.gateway.ledger.calls(account.id))
        (folder / "agent.log").write_text(result.stdout + result.stderr, encoding="utf-8")
        ended = watch.ended or ("cancelled" if stop.is_set() else "error",
                                f"the agent {result.describe()} without reporting an end (see agent.log)")
        diff = take_diff(run.workdir, folder / "baseline.git")
        answer_file = run.logdir / "answer.txt"
        answer = answer_file.read_text(encoding="utf-8") if answer_file.exists() else None
        check = None
        if request.task_dir is not None:
            score = task_problem(request.task_dir, "taskdir", tools=env / "bin").score(sandbox, run.workdir, answer)
            check = f"{'solved' if score.value == 1 else 'not solved'} (score {score.value:g})"
        shutil.copytree(run.workdir, folder / "workdir", symlinks=True)
        shutil.copytree(run.logdir, folder / "logdir", symlinks=True)
        (folder / "live.json").unlink()
    (folder / "diff.patch").write_text(diff, encoding="utf-8")
    tokens_in, tokens_out = sum(r["input_tokens"] for r in rows), sum(r["output_tokens"] for r in rows)
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


async def _follow(agent_run: asyncio.Future[SandboxResult], logdir: Path, account: Callable[[], Account],
                  started: float, on_progress: Callable[[Progress], None], stop: asyncio.Event, grace_s: float,
                  halt: threading.Event) -> _Watch:
    """Follow the agent until its sandbox run ends: progress from its events and the ledger; on `stop`, a
    cancel through its inbox, then `halt` (the sandbox kills it) after the grace period."""
    reader = EventReader(logdir / "events.jsonl")
    watch = _Watch(Progress())
    cancel_sent_at: float | None = None
    while not agent_run.done():
        watch.absorb(reader)
        state = account()
        watch.progress.cost_usd, watch.progress.tokens = nano_to_usd(state.spent_nano), state.spent_tokens
        watch.progress.elapsed_s = time.monotonic() - started
        on_progress(watch.progress)
        if stop.is_set() and cancel_sent_at is None:
            cancel_sent_at = time.monotonic()
            _send_cancel(logdir, watch.top_agent or "main")
        if cancel_sent_at is not None and time.monotonic() - cancel_sent_at > grace_s:
            halt.set()
        await asyncio.wait({agent_run}, timeout=0.25)
    watch.absorb(reader)
    return watch


def _send_cancel(logdir: Path, agent_id: str) -> None:
    """Ask the agent to stop, through its inbox (written atomically: temp file, then rename)."""
    inbox = logdir / "inbox"
    inbox.mkdir(exist_ok=True)
    sequence = len(list(inbox.glob("*.json")))
    temp = inbox / f".{sequence:06d}.tmp"
    temp.write_text(json.dumps({"type": "cancel", "agent_id": agent_id, "text": "stopped by the user"}))
    os.replace(temp, inbox / f"{sequence:06d}.json")
