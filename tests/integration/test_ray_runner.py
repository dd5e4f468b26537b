"""The ray runner on a real two-node Ray cluster on loopback (a head and a worker node, each a process of its own):
a scripted evaluation spread over both nodes, its results and files on the head; the worker node killed mid-run,
its attempts run again on the head as retries, every problem scored once; no provider key in what a task is sent
or returns; and the one-line errors for a cluster that cannot be reached or a Ray that is not installed."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from sica.archive import Run
from sica.config import load_settings
from sica.loop.improve import ImproveRequest, improve
from sica.runner import ray_api, ray_runner
from sica.runner.environments import seed_agent_dir
from sica.runner.evaluate import EvalConfig, EvalReport, EvalRequest, run_eval
from sica.runner.setup import serve_gateway
from tests.support.cli import clean_environ, run_sica
from tests.support.config import ENVS, EVAL, scripted_config, write_config, write_improve_config
from tests.support.evals import SOLVE_SCRIPT, make_tasks, results_of
from tests.support.ray_cluster import Cluster, ray_cluster

#: A key the head's gateway holds for an alias no attempt uses: it must appear nowhere a worker can see.
PROVIDER_KEY = "sk-ray-test-provider-key-0123456789abcdef"
WORDS = {"alpha": "ok", "beta": "ok", "gamma": "other", "delta": "ok"}


def slow_script(latency_s: float) -> list[dict[str, object]]:
    """SOLVE_SCRIPT with each model call taking `latency_s` (the gateway waits it out)."""
    return [{**line, "latency_s": latency_s} for line in SOLVE_SCRIPT]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("ray")
    with ray_cluster(root) as running:
        saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
        os.environ.update({k: running.environ[k] for k in saved})
        try:
            yield running
        finally:
            ray_api.disconnect()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture
def nodes_dir():
    """The worker nodes' `[runner] worker_dir`: where the sandbox user can reach it (tmp_path is closed)."""
    folder = Path(tempfile.mkdtemp(prefix="sica-ray-nodes-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def write_home(home: Path, cluster: Cluster, nodes: Path, latency_s: float, retries: int = 2) -> Path:
    make_tasks(home / "tasks", WORDS)
    aliases = {"fake": {}, "hosted": {"provider": "openai_compatible", "model": "m", "script": None,
                                      "base_url": "http://127.0.0.1:9/v1", "api_key_env": "HOSTED_KEY"}}
    text = scripted_config(aliases, eval={**EVAL, "infra_retries": retries}, solve={"envs_dir": ENVS},
                           roles={"main": "fake"},
                           runner={"kind": "ray", "address": cluster.address, "worker_dir": nodes})
    return write_config(home, text, {"script.jsonl": slow_script(latency_s)})


def evaluate(home: Path, stop: asyncio.Event | None = None) -> EvalReport:
    settings = load_settings(home / "sica.toml", {})
    request = EvalRequest(seed_agent_dir(), [f"taskdir:{home / 'tasks'}"], workers=2)
    start_gateway = functools.partial(serve_gateway, settings, clean_environ() | {"HOSTED_KEY": PROVIDER_KEY})
    return asyncio.run(run_eval(EvalConfig.of(settings), request, lambda _: None, stop or asyncio.Event(),
                                gateway=start_gateway))


def node_ids(cluster: Cluster) -> dict[str, str]:
    """Node id → 'head' or 'worker', from the nodes' own temporary folders' session files."""
    import ray

    ray_api.connect(cluster.address)
    by_dir = {str(cluster.head.temp_dir): "head", **{str(w.temp_dir): "worker" for w in cluster.workers}}
    named = {}
    for node in ray.nodes():
        for folder, name in by_dir.items():
            if str(node.get("ObjectStoreSocketName", "")).startswith(folder):
                named[node["NodeID"]] = name
    return named


def scores(report: EvalReport) -> dict[str, float]:
    return {r.problem_id.rsplit("/", 1)[1]: r.score for r in report.results}


def test_an_evaluation_runs_across_both_nodes_and_the_head_keeps_its_results(cluster, tmp_path, nodes_dir,
                                                                             monkeypatch):
    home = tmp_path
    write_home(home, cluster, nodes_dir, latency_s=0.5)
    sent: list[bytes] = []
    real_submit = ray_api.submit

    def spying_submit(function, *args, **kwargs):
        from ray import cloudpickle  # imported once the cluster's token is in the environment

        sent.append(cloudpickle.dumps(args[0]))  # the WorkerAttempt as it travels (as Ray pickles it)
        return real_submit(function, *args, **kwargs)

    monkeypatch.setattr(ray_api, "submit", spying_submit)
    report = evaluate(home)

    assert scores(report) == {"alpha": 1.0, "beta": 1.0, "gamma": 0.0, "delta": 1.0}
    assert not report.interrupted and all(r.tries == 1 and not r.infra for r in report.results)
    for result in report.results:
        folder = Path(result.folder)
        assert folder.is_relative_to(home / "evals")  # on the head, where the archive and results live
        assert (folder / "diff.patch").read_text().count("+ok") == 1 or result.score == 0.0
        assert (folder / "logdir" / "events.jsonl").is_file() and (folder / "outcome.json").is_file()
        assert json.loads((folder / "outcome.json").read_text())["status"] == "done"
        assert (result.input_tokens, result.output_tokens) == (2100, 30)  # the head's ledger, 2 calls each
    with closing(sqlite3.connect(home / "evals" / "results.sqlite")) as db:
        assert db.execute("SELECT count(*) FROM results").fetchone() == (4,)
    # Both nodes ran attempts (the tasks are spread), and nothing stayed in the nodes' work folders.
    names = node_ids(cluster)
    placements = [json.loads((Path(r.folder) / "ray.json").read_text()) for r in report.results]
    ran = [names[placement["node"]] for placement in placements]
    assert all(0 < p["worker_s"] < p["total_s"] for p in placements), placements
    assert sorted(set(ran)) == ["head", "worker"], ran
    assert list((nodes_dir / "attempts").glob("*/attempt-*")) == []
    # Workers get the attempt's token, never a provider key: not in what each task is sent, nor in its files.
    assert len(sent) == 4 and all(PROVIDER_KEY.encode() not in blob for blob in sent)
    assert all(b"sica-" in blob for blob in sent)  # … while the attempt's bearer token is there
    for path in (home / "evals").rglob("*"):
        if path.is_file():
            assert PROVIDER_KEY.encode() not in path.read_bytes(), path


def test_a_loop_iteration_evaluates_its_versions_on_the_cluster(cluster, tmp_path, nodes_dir):
    """`sica improve`'s loop with `[runner] kind = "ray"`: the meta agent runs on the head, and every evaluation
    of agent 0 and of the new version runs on the cluster's nodes, its results in the run's archive."""
    home = tmp_path
    make_tasks(home / "tasks", WORDS)
    write_improve_config(home, [
        {"tool_calls": [{"name": "create", "arguments": {"path": "description.txt",
                                                        "content": "agent N: plans before it edits\n"}}]},
        {"tool_calls": [{"name": "complete", "arguments": {"summary": "added planning"}}]},
    ], runner_keys={"kind": "ray", "address": cluster.address, "worker_dir": nodes_dir})
    request = ImproveRequest(home / "runs" / "r1", [f"taskdir:{home / 'tasks'}"], [], 1, model="task")
    lines: list[str] = []
    asyncio.run(improve(load_settings(home / "sica.toml", {}), {}, request, lines.append, asyncio.Event()))
    assert lines[0] == "evaluating agent 0" and lines[1].startswith("iteration 1: agent-1 from agent-0"), lines
    with Run.open(home / "runs" / "r1", read_only=True) as run:
        assert [(v.number, v.state) for v in run.versions()] == [(0, "valid"), (1, "valid")]
        for version in (0, 1):
            assert {e.problem_id.rsplit("/", 1)[1]: e.score for e in run.evaluations(version)} == {
                "alpha": 1.0, "beta": 1.0, "gamma": 0.0, "delta": 1.0}
    tries = list((home / "evals").glob("*/problems/*/try-*"))
    assert tries and all((folder / "ray.json").is_file() for folder in tries)
    assert set(node_ids(cluster)) >= {json.loads((folder / "ray.json").read_text())["node"] for folder in tries}


def test_sica_eval_runs_on_the_cluster_from_the_command_line(cluster, tmp_path, nodes_dir):
    """`sica eval --runner ray --ray-address ADDR` as a user runs it (a process of its own, the cluster's token in
    its environment): the same scores, each try placed on a node of the cluster."""
    home = tmp_path
    write_home(home, cluster, nodes_dir, latency_s=0.2)
    text = (home / "sica.toml").read_text().replace(f'address = "{cluster.address}"\n', "")
    (home / "sica.toml").write_text(text)
    environ = clean_environ() | {key: cluster.environ[key] for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    done = run_sica(home, "eval", "-b", f"taskdir:{home / 'tasks'}", "--runner", "ray", "--ray-address",
                    cluster.address, env=environ, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    results = results_of(home)
    assert {r["problem_id"].rsplit("/", 1)[1]: r["score"] for r in results} == {
        "alpha": 1.0, "beta": 1.0, "gamma": 0.0, "delta": 1.0}
    nodes = set(node_ids(cluster))
    assert all(json.loads((Path(r["folder"]) / "ray.json").read_text())["node"] in nodes for r in results)


def test_a_stopped_evaluation_cancels_its_tasks_and_records_only_what_finished(cluster, tmp_path, nodes_dir):
    home = tmp_path
    write_home(home, cluster, nodes_dir, latency_s=30.0)
    stop = asyncio.Event()
    settings = load_settings(home / "sica.toml", {})
    request = EvalRequest(seed_agent_dir(), [f"taskdir:{home / 'tasks'}"], workers=2)

    async def main() -> EvalReport:
        asyncio.get_running_loop().call_later(12.0, stop.set)
        return await run_eval(EvalConfig.of(settings), request, lambda _: None, stop,
                              gateway=functools.partial(serve_gateway, settings, clean_environ()))

    started = time.monotonic()
    report = asyncio.run(main())
    assert time.monotonic() - started < 60  # not the 60 s its first attempts would take
    assert report.interrupted and report.results == []
    with closing(sqlite3.connect(home / "evals" / "results.sqlite")) as db:
        assert db.execute("SELECT count(*) FROM results").fetchone() == (0,)
    # The cancelled tasks' worker processes are gone; the next task on a node sweeps what they left.
    left = list(nodes_dir.glob("attempts/*/attempt-*"))
    assert left
    ray_runner.sweep_dead(left[0].parent, "attempt-")
    assert not [folder for folder in left if folder.exists() and folder.parent == left[0].parent]
    relays = list(Path(tempfile.gettempdir()).glob("sica-relay-*"))
    ray_runner.sweep_dead(Path(tempfile.gettempdir()), "sica-relay-")
    assert not [relay for relay in relays if relay.exists() and not Path(f"/proc/{relay.name.split('-')[2]}").exists()]


def test_a_worker_node_killed_mid_run_has_its_attempts_rerun_and_every_problem_scored_once(cluster, tmp_path,
                                                                                          nodes_dir):
    """Last in the module: it kills the cluster's worker node."""
    home = tmp_path
    write_home(home, cluster, nodes_dir, latency_s=4.0)
    worker = cluster.workers[0]
    (worker_id,) = [node for node, name in node_ids(cluster).items() if name == "worker"]
    killed = threading.Event()

    def kill_when_busy() -> None:
        # Kill once the worker node has an attempt whose model call is in flight: both running attempts (one a
        # node, the tasks being spread) have a call pending in the head's ledger.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if list((nodes_dir / "attempts" / worker_id).glob("attempt-*/task.md")) and _pending_calls(home) >= 2:
                time.sleep(0.5)
                worker.kill()
                killed.set()
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_when_busy, daemon=True)
    killer.start()
    try:
        report = evaluate(home)
    finally:
        killer.join(5)
    assert killed.is_set()
    assert scores(report) == {"alpha": 1.0, "beta": 1.0, "gamma": 0.0, "delta": 1.0}
    assert not report.interrupted and not any(r.infra for r in report.results)
    retried = [r for r in report.results if r.tries > 1]
    assert retried, "the killed node's attempt should have been run again as a retry"
    with closing(sqlite3.connect(home / "evals" / "results.sqlite")) as db:
        assert db.execute("SELECT count(*), count(DISTINCT key) FROM results").fetchone() == (4, 4)
    lines = (report.folder / "results.jsonl").read_text().splitlines()
    assert len(lines) == 4  # one result a problem, the rerun not a second one
    # The dead worker's call in flight was settled by the ledger (the gateway finished and metered it): nothing is
    # left pending, and the lost try's account paid for what it used, apart from the rerun's.
    with closing(sqlite3.connect(report.folder / "ledger.sqlite")) as ledger:
        assert ledger.execute("SELECT count(*) FROM calls WHERE status = 'pending'").fetchone() == (0,)
        (accounts,) = ledger.execute("SELECT count(DISTINCT account_id) FROM calls").fetchone()
    assert accounts == 4 + len(retried)  # each try its own account: the lost tries' calls are theirs
    names = node_ids(cluster)
    for result in retried:
        assert Path(result.folder).name == f"try-{result.tries}"
        # The rerun ran on the head, the one node left; the lost try left no result of its own.
        assert names[json.loads((Path(result.folder) / "ray.json").read_text())["node"]] == "head"
        assert not (Path(result.folder).parent / "try-1" / "outcome.json").exists()


def _pending_calls(home: Path) -> int:
    """Model calls in flight in the evaluation's ledger (read as the gateway writes it)."""
    for ledger in (home / "evals").glob("*/ledger.sqlite"):
        try:
            with closing(sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1)) as db:
                return int(db.execute("SELECT count(*) FROM calls WHERE status = 'pending'").fetchone()[0])
        except sqlite3.Error:
            return 0
    return 0
