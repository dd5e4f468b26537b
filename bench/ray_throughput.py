#!/usr/bin/env python
"""Problems per minute of `sica eval --runner ray` on a one-node Ray cluster against a two-node one, on loopback.

Each cluster is real (`ray start --block` processes with their own temporary folders, as in the tests, stopped by
their process groups, never `ray stop`): one node of `--cpus` CPUs, then a head and a worker node of `--cpus`
each, so the second is twice as wide. The model is the gateway's scripted upstream with a fixed latency per call
(`--latency-s`, 3 s; `--calls`, 3, a problem), the agent is agent 0 in the real bwrap sandbox on the node that
runs the task, and every problem is scored there by its sandboxed check. Each cluster runs `--rounds` × its width
fresh task-folder problems, so the ideal wall time is the same for both: expect near 2× while the model's latency
dominates. The head's overhead per task is, from each try's `ray.json`, the time the head's half took (account,
submit, Ray's scheduling and transfers, unpacking the files, settling with the ledger) less the worker's own time.

    PYTHONPATH=src:. .venv/bin/python bench/ray_throughput.py              # about 2 minutes
    PYTHONPATH=src:. .venv/bin/python bench/ray_throughput.py --latency-s 5 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sica.config import load_settings  # noqa: E402
from sica.runner import ray_api  # noqa: E402
from sica.runner.environments import seed_agent_dir  # noqa: E402
from sica.runner.evaluate import EvalConfig, EvalRequest, run_eval  # noqa: E402
from sica.runner.setup import serve_gateway  # noqa: E402
from tests.support.ray_cluster import ray_cluster  # noqa: E402


def write_tasks(root: Path, count: int) -> Path:
    for index in range(count):
        task = root / f"task-{index:02d}"
        task.mkdir(parents=True)
        (task / "task.md").write_text("Write 'ok' into done.txt.\n")
        (task / "build.sh").write_text('echo start > "$1/README"\n')
        (task / "check.sh").write_text('test "$(cat "$1/done.txt")" = ok\n')
    return root


def write_config(home: Path, calls: int, latency_s: float, address: str, nodes: Path) -> Path:
    steps = [{"tool_calls": [{"name": "create", "arguments": {"path": "done.txt", "content": "ok\n"}}],
              "usage": {"input": 1000, "output": 20}, "latency_s": latency_s} for _ in range(calls - 1)]
    steps.append({"tool_calls": [{"name": "complete", "arguments": {"summary": "done"}}],
                  "usage": {"input": 1000, "output": 10}, "latency_s": latency_s})
    (home / "script.jsonl").write_text("".join(json.dumps(step) + "\n" for step in steps))
    config = home / "sica.toml"
    config.write_text('[models.fake]\nprovider = "scripted"\nmodel = "scripted"\nscript = "script.jsonl"\n'
                      'price = "free"\n\n[eval]\nresults_dir = "evals"\nstagger_s = 0.3\n\n'
                      f'[runner]\nkind = "ray"\naddress = "{address}"\nworker_dir = "{nodes}"\n')
    return config


def measure(config: Path, tasks: Path) -> tuple[float, int, int, list[float]]:
    """Wall time, problems, the width used, and the head's overhead of each task (seconds)."""
    settings = load_settings(config, {})
    request = EvalRequest(seed_agent_dir(), [f"taskdir:{tasks}"], fresh=True)
    start_gateway = functools.partial(serve_gateway, settings, {})
    started = time.perf_counter()
    report = asyncio.run(run_eval(EvalConfig.of(settings), request, lambda _: None, asyncio.Event(),
                                  gateway=start_gateway))
    wall = time.perf_counter() - started
    solved = sum(r.score == 1.0 for r in report.results)
    if solved != len(report.results):
        sys.exit(f"only {solved} of {len(report.results)} problems solved: see {report.folder}")
    overheads = []
    for result in report.results:
        placement = json.loads((Path(result.folder) / "ray.json").read_text())
        overheads.append(placement["total_s"] - placement["worker_s"])
    return wall, len(report.results), report.workers, overheads


def run_on(nodes: int, args: argparse.Namespace, root: Path) -> tuple[float, int, int, list[float]]:
    folder = root / f"n{nodes}"
    folder.mkdir()
    (folder / "cfg").mkdir()
    node_dir = Path(tempfile.mkdtemp(prefix="sica-ray-bench-"))
    node_dir.chmod(0o755)
    with ray_cluster(folder, head_cpus=args.cpus, worker_cpus=args.cpus if nodes == 2 else 0) as cluster:
        saved = {key: os.environ.get(key) for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
        os.environ.update({key: cluster.environ[key] for key in saved})
        try:
            config = write_config(folder / "cfg", args.calls, args.latency_s, cluster.address, node_dir)
            width = args.cpus * nodes
            # A warm-up as wide as the cluster: every node caches the agent and starts its Ray worker processes.
            measure(config, write_tasks(folder / "cfg" / "warmup", width))
            return measure(config, write_tasks(folder / "cfg" / "tasks", args.rounds * width))
        finally:
            ray_api.disconnect()
            for key, value in saved.items():
                os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-s", type=float, default=3.0)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2, help="Ray CPUs per node (attempts at once on it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sica-rb-") as scratch:
        rows = {nodes: run_on(nodes, args, Path(scratch)) for nodes in (1, 2)}
    per_problem_s = args.calls * args.latency_s
    print(f"scripted model: {args.calls} calls of {args.latency_s:g} s a problem; {os.cpu_count()} cores on this "
          f"machine; {args.cpus} Ray CPUs a node")
    print(f"{'nodes':>5} {'width':>5} {'problems':>8} {'wall s':>7} {'ideal s':>7} {'per min':>8} {'of ideal':>8} "
          f"{'head overhead/task s (median, max)':>36}")
    rates = {}
    for nodes, (wall, done, width, overheads) in rows.items():
        rates[nodes] = done * 60 / wall
        ideal_rate = width * 60 / per_problem_s
        print(f"{nodes:>5} {width:>5} {done:>8} {wall:>7.1f} {args.rounds * per_problem_s:>7.1f} "
              f"{rates[nodes]:>8.1f} {rates[nodes] / ideal_rate:>8.0%} "
              f"{statistics.median(overheads):>25.3f}, {max(overheads):.3f}")
    print(f"two nodes / one node: {rates[2] / rates[1]:.2f}x problems per minute")


if __name__ == "__main__":
    main()
