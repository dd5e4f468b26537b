"""The `ray` runner: each (agent version, problem) pair of an evaluation is a Ray task on some node of a cluster.

The task lays out its problem, unpacks the agent version it was sent and builds its environment on its node
(both cached there, by the version's code hash and by its declared dependencies), runs the sandboxed agent and the
sandboxed scorer there, and returns what it found with the attempt folder's files (events, diff, logs). The head
keeps what only it may hold: the gateway (the provider keys; each sandbox reaches it through a relay on its node to
the gateway's TCP address, with the attempt's bearer token and alias list), the ledger, the results store and the
archive (each try's `ray.json` names the node that ran it, with its time there and in all). A task whose node died
is not retried by Ray (`max_retries=0`) but raised as `WorkerLost`, which the evaluation counts as one more try of
the same keyed result (`[eval] infra_retries` bounds them): a rerun elsewhere is a retry, never a second result;
the dead worker's call in flight is settled by the ledger's rules (the gateway finishes and meters it).

Ray is the optional extra `ray`; nothing imports it unless the runner is chosen (`ray_api.require_ray`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uv

from sica.benchmarks.base import Problem, Score
from sica.config import RunnerSettings
from sica.gateway import RunningGateway
from sica.gateway.accounts import Account
from sica.gateway.relay import gateway_relay
from sica.runner import ray_api
from sica.runner.attempt import (
    MAX_ANSWER_BYTES,
    SETTLE_WAIT_S,
    AttemptLimits,
    AttemptOutcome,
    Progress,
    _agent_caused,
    _calls_settled,
    _contract,
    _decide_end,
    _follow,
    _Watch,
    agent_spec,
    finish_attempt,
    lay_out_run,
)
from sica.runner.environments import ensure_environment
from sica.runner.oversight import OverseerPlan, with_overseer
from sica.runner.setup import AgentSetup, _snapshot
from sica.sandbox import Sandbox, SandboxResult, open_sandbox
from sica.sandbox.mounts import check_reachable
from sica.sandbox.scratch import ScratchArea
from sica.sandbox.untrusted import copy_untrusted_tree, read_untrusted_text
from sica.workspace.diffs import take_diff
from sica.workspace.trees import copy_tree


class WorkerLost(Exception):
    """The Ray node (or worker process) running an attempt died before it returned: run it again elsewhere."""


@dataclass(frozen=True)
class WorkerAttempt:
    """What a Ray task is sent: the problem, which agent version (by code hash; its files travel beside, once per
    evaluation, in the object store), its models, limits and sandbox, the attempt's own `SICA_AGENT_*` contract
    (its bearer token, never a provider key) and where the head's gateway listens on TCP."""

    problem: Problem
    agent_hash: str
    models: dict[str, dict[str, object]]
    limits: AttemptLimits
    sandbox: str
    contract: dict[str, str]
    gateway_host: str
    gateway_port: int
    envs_dir: Path
    worker_dir: Path


@dataclass(frozen=True)
class WorkerReport:
    """What a task returns: how the agent's run went (the follower's watch and the sandbox's result), the diff,
    answer and score taken on the node, what the harness could not finish there, the attempt folder's files as a
    tar, and which node ran it."""

    watch: _Watch
    result: SandboxResult
    seconds: float
    started_wall: float
    diff: str
    answer: str | None
    score: Score | None
    failures: list[str]
    files: bytes
    node: str
    worker_s: float


def pack_tree(folder: Path) -> bytes:
    """A folder's files as an uncompressed tar (the harness's own copies: links kept as links)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for entry in sorted(folder.iterdir()):
            tar.add(entry, arcname=entry.name)
    return buffer.getvalue()


def unpack_tree(data: bytes, folder: Path) -> None:
    """Extract a `pack_tree` tar into `folder`, refusing anything outside it (tarfile's `data` filter)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(folder, filter="data")


def pack_agent(agent_dir: Path) -> tuple[str, bytes]:
    """An agent version's files (as `copy_tree` takes them: no .git, environments or caches) as a tar, and the
    digest workers cache it by."""
    with tempfile.TemporaryDirectory(prefix="sica-ship-") as temp:
        copy = Path(temp) / "agent"
        copy_tree(agent_dir, copy)
        data = pack_tree(copy)
    return hashlib.sha256(data).hexdigest()[:32], data


def node_agent(worker_dir: Path, agent_hash: str, agent_tar: bytes, envs_dir: Path) -> tuple[Path, Path]:
    """The agent version's compiled code snapshot and environment on this node, made once per node and version
    (a file lock serializes the node's worker processes; a rename makes the snapshot appear whole)."""
    home = worker_dir / "agents" / agent_hash
    code, env_link = home / "code", home / "env"
    home.mkdir(parents=True, exist_ok=True)
    for folder in (worker_dir, worker_dir / "agents", home):
        folder.chmod(0o755)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not code.is_dir():
            staging = Path(tempfile.mkdtemp(prefix="staging-", dir=home))
            try:
                staging.chmod(0o755)
                unpack_tree(agent_tar, staging / "src")
                env = ensure_environment(staging / "src", envs_dir.expanduser(), uv.find_uv_bin())
                _snapshot(staging / "src", staging / "code", env)
                (staging / "env").write_text(str(env))
                os.replace(staging / "env", env_link)
                os.replace(staging / "code", code)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    env = Path(env_link.read_text())
    check_reachable(env)
    return code, env


def _idle_account() -> Account:
    """What the worker's follower sees of the account: nothing (spend is the head's to know)."""
    return Account("remote", "remote", None)


async def work_attempt(attempt: WorkerAttempt, agent_tar: bytes, node: str) -> WorkerReport:
    """The worker's part of an attempt: `run_attempt`'s steps that need the sandbox, with the gateway reached
    through a relay, and the folder's files packed for the head."""
    begun = time.monotonic()
    code, env = await asyncio.to_thread(node_agent, attempt.worker_dir, attempt.agent_hash, agent_tar, attempt.envs_dir)
    sandbox = open_sandbox(attempt.sandbox, allow_unsafe=attempt.sandbox == "none")
    limits, problem = attempt.limits, attempt.problem
    failures: list[str] = []
    attempts_dir = attempt.worker_dir / "attempts" / node
    attempts_dir.mkdir(parents=True, exist_ok=True)
    for parent, prefix in ((attempts_dir, "attempt-"), (Path(tempfile.gettempdir()), "sica-relay-")):
        sweep_dead(parent, prefix)
    pid = os.getpid()
    folder = Path(tempfile.mkdtemp(prefix=f"attempt-{pid}-", dir=attempts_dir))
    relay_dir = Path(tempfile.mkdtemp(prefix="sica-relay-" + f"{pid}-"))
    relay_dir.chmod(0o755)
    try:
        (folder / "task.md").write_text(problem.statement, encoding="utf-8")
        async with gateway_relay(relay_dir / "gateway.sock", attempt.gateway_host, attempt.gateway_port) as uds:
            with ScratchArea(limits.scratch_mb) as scratch:
                run = await asyncio.to_thread(lay_out_run, problem, code, scratch.path, uds, folder)
                started, started_wall = time.monotonic(), time.time()
                spec = agent_spec(limits, sandbox, run, env, attempt.contract)
                halt = threading.Event()
                agent_run = asyncio.ensure_future(asyncio.to_thread(sandbox.run, spec, halt))
                never = asyncio.Event()
                try:
                    watch = await _follow(
                        agent_run, run.logdir, _idle_account, started, _ignore, never, limits, halt, lambda: None
                    )
                except BaseException:
                    halt.set()
                    raise
                seconds = time.monotonic() - started
                result = agent_run.result()
                (folder / "agent.log").write_text(result.stdout + result.stderr, encoding="utf-8")
                diff = await asyncio.to_thread(
                    _agent_caused, failures, "taking the diff", "", take_diff, run.workdir, folder / "baseline.git"
                )
                answer = read_untrusted_text(run.logdir / "answer.txt", MAX_ANSWER_BYTES)
                score = None
                if problem.score is not None:
                    score = await asyncio.to_thread(
                        _agent_caused, failures, "scoring", None, problem.score, sandbox, run.workdir, answer
                    )
                    if score is None:
                        score = Score(0.0, f"the agent's output could not be scored: {failures[-1]}")
                for source, kept in ((run.workdir, "workdir"), (run.logdir, "logdir")):
                    _agent_caused(failures, f"keeping its {kept}", None, copy_untrusted_tree, source, folder / kept)
        files = await asyncio.to_thread(pack_tree, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(relay_dir, ignore_errors=True)
    result = SandboxResult(result.ending, result.exit_code, result.signal, result.seconds, "", "")
    worker_s = time.monotonic() - begun
    return WorkerReport(watch, result, seconds, started_wall, diff, answer, score, failures, files, node, worker_s)


def sweep_dead(parent: Path, prefix: str) -> None:
    """Remove the folders `PREFIX<pid>-…` in `parent` whose worker process is gone (a task cancelled or killed
    with its node leaves its attempt folder and relay behind)."""
    for entry in parent.glob(f"{prefix}*"):
        pid = entry.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(entry, ignore_errors=True)


def _ignore(_: Progress) -> None:
    return None


def run_on_worker(attempt: WorkerAttempt, agent_tar: bytes) -> WorkerReport:
    """The Ray task's body (a plain function: Ray runs it in a worker process of the node it picked)."""
    return asyncio.run(work_attempt(attempt, agent_tar, ray_api.node_id()))


@dataclass
class RayAttempts:
    """Runs an evaluation's attempts on a Ray cluster; called as `run_attempt` is (the head's half of it)."""

    runner: RunnerSettings
    envs_dir: Path
    sandbox_name: str
    agent_hash: str
    agent_ref: Any

    async def __call__(
        self,
        problem: Problem,
        agent: AgentSetup,
        limits: AttemptLimits,
        sandbox: Sandbox,
        gateway: RunningGateway,
        run_id: str,
        folder: Path,
        on_progress: Callable[[Progress], None],
        stop: asyncio.Event,
        *,
        parent_account: str | None = None,
        archive: Path | None = None,
        overseer: OverseerPlan | None = None,
    ) -> AttemptOutcome:
        if archive is not None or overseer is not None:
            raise ValueError("the ray runner runs evaluations without an overseer only")
        if gateway.tcp_address is None:
            raise ValueError('the gateway does not listen on TCP: the ray runner needs `[runner] kind = "ray"`')
        begun = time.monotonic()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "task.md").write_text(problem.statement, encoding="utf-8")
        account = gateway.gateway.open_account(
            f"{problem.id} {run_id}",
            parent=parent_account,
            limit_usd=limits.budget_usd,
            aliases=frozenset(with_overseer(agent.aliases, overseer)),
        )
        host, port = gateway.tcp_address
        attempt = WorkerAttempt(
            problem,
            self.agent_hash,
            agent.models,
            limits,
            self.sandbox_name,
            _contract(limits, run_id, problem.id, account.token, agent.models),
            host,
            port,
            self.envs_dir,
            self.runner.worker_dir,
        )
        ref = ray_api.submit(
            run_on_worker, attempt, self.agent_ref, cpus=self.runner.cpus, memory_mb=self.runner.memory_mb
        )
        report = await _awaited(ref, stop)
        await asyncio.to_thread(unpack_tree, report.files, folder)
        await _calls_settled(lambda: gateway.gateway.account(account.id), SETTLE_WAIT_S)
        rows = list(gateway.gateway.ledger.calls(account.id))
        status, summary = _decide_end(report.watch, report.result, False, limits, rows)
        outcome = finish_attempt(
            folder,
            problem,
            agent,
            gateway,
            account,
            status,
            summary,
            report.score,
            report.diff,
            report.answer,
            list(report.failures),
            report.seconds,
            report.started_wall,
            rows,
        )
        # Which node ran the try, its own time, and what the head and Ray added around it (scheduling, transfers).
        total_s = time.monotonic() - begun
        placement = {"node": report.node, "worker_s": round(report.worker_s, 3), "total_s": round(total_s, 3)}
        (folder / "ray.json").write_text(json.dumps(placement) + "\n", encoding="utf-8")
        return outcome


async def _awaited(ref: Any, stop: asyncio.Event) -> WorkerReport:
    """The task's report; on `stop` the task is cancelled (its sandbox is killed) and this raises."""
    waiting = asyncio.ensure_future(ray_api.result(ref))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not waiting.done():
        ray_api.cancel(ref)
        waiting.cancel()
        with contextlib.suppress(BaseException):
            await waiting
        raise RuntimeError("stopped by the user")
    try:
        report = waiting.result()
    except ray_api.lost_errors() as error:
        raise WorkerLost(f"the Ray node running it was lost ({type(error).__name__}); it runs again") from None
    except ray_api.task_error() as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None
        raise RuntimeError(str(error).strip().splitlines()[-1]) from None
    if not isinstance(report, WorkerReport):
        raise TypeError(f"a Ray task returned {type(report).__name__}, not a WorkerReport")
    return report


@contextlib.asynccontextmanager
async def ray_attempts(
    runner: RunnerSettings, envs_dir: Path, sandbox: str, agent_dir: Path
) -> AsyncIterator[RayAttempts]:
    """Connect to the cluster (`[runner] address`) and put the agent version in its object store, for one
    evaluation."""
    await asyncio.to_thread(ray_api.connect, runner.address)
    agent_hash, data = await asyncio.to_thread(pack_agent, agent_dir)
    agent_ref = ray_api.put(data)
    yield RayAttempts(runner, envs_dir, sandbox, agent_hash, agent_ref)


def cluster_width(runner: RunnerSettings) -> int:
    """How many attempts the cluster runs at once: its CPUs over those one attempt asks."""
    return max(1, int(ray_api.cluster_cpus() // runner.cpus))
