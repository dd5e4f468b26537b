"""A real Ray cluster on loopback for tests: a head node and worker nodes, each `ray start --block` as a process
of its own (its own session, temporary folder and process group), with token authentication (`RAY_AUTH_MODE`
and the token exported to every node and to the test's driver). Nodes are stopped by their own process groups,
never by `ray stop`, which would kill every Ray process on the machine, other people's too."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

#: Ray's command line, run by this interpreter (as `ray`, without needing the script on PATH).
RAY = [sys.executable, "-m", "ray.scripts.scripts"]
SRC = str(Path(__file__).resolve().parents[2] / "src")
#: Small nodes: this machine has 2 cores shared with others.
#: One token for every cluster this process starts: a Ray driver reads its token once, at its first connection.
TOKEN = secrets.token_hex(32)
NODE_ARGS = ["--disable-usage-stats", "--object-store-memory=200000000", "--block"]
HEAD_ARGS = ["--head", "--port=0", "--include-dashboard=false"]


@dataclass
class Node:
    process: subprocess.Popen[bytes]
    temp_dir: Path
    log: Path

    def kill(self) -> None:
        """SIGKILL the node's whole process group (its raylet, object store and workers), as a machine dying
        would, and reap it."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(30)
        _kill_leftovers(self.temp_dir)


def _kill_leftovers(temp_dir: Path) -> None:
    """Kill processes of this node that left its process group (Ray's workers start sessions of their own): they
    name the node's temporary folder on their command line, so only this node's are touched, by pid."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(temp_dir) in command:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


@dataclass
class Cluster:
    address: str
    environ: dict[str, str]
    head: Node
    workers: list[Node] = field(default_factory=list)

    def add_worker(self, root: Path, cpus: int, name: str) -> Node:
        temp = root / name
        node = _start(["--address", self.address, f"--num-cpus={cpus}", "--node-ip-address=127.0.0.1"], temp,
                      self.environ)
        self.workers.append(node)
        return node

    def wait_for_nodes(self, count: int, timeout: float = 90) -> None:
        """Wait until `count` nodes are alive (asked through a short driver of its own)."""
        script = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='error'); "
                  "print(sum(1 for n in ray.nodes() if n['Alive']))")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = subprocess.run([sys.executable, "-c", script, self.address], capture_output=True, text=True,
                                  env=self.environ, timeout=120)
            if done.returncode == 0 and done.stdout.strip().splitlines()[-1:] == [str(count)]:
                return
            time.sleep(1)
        raise TimeoutError(f"the cluster did not reach {count} nodes")


def _start(args: list[str], temp: Path, environ: dict[str, str]) -> Node:
    temp.mkdir(parents=True)
    log = temp.parent / f"{temp.name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*RAY, "start", *args, f"--temp-dir={temp}", *NODE_ARGS], stdout=out,
                                   stderr=subprocess.STDOUT, env=environ, start_new_session=True)
    return Node(process, temp, log)


def cluster_environ() -> dict[str, str]:
    """The nodes' environment: this one's (sica importable from this checkout) without provider keys or sica
    settings, with token authentication."""
    environ = {k: v for k, v in os.environ.items()
               if not k.endswith("_API_KEY") and not k.startswith("SICA_") and not k.startswith("RAY_")}
    pythonpath = [SRC, *(p for p in environ.get("PYTHONPATH", "").split(":") if p)]
    return environ | {"PYTHONPATH": ":".join(dict.fromkeys(pythonpath)), "RAY_AUTH_MODE": "token",
                      "RAY_AUTH_TOKEN": TOKEN,
                      # A dead node is noticed within seconds, not the default half minute.
                      "RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "4",
                      "RAY_health_check_initial_delay_ms": "1000", "RAY_health_check_timeout_ms": "1000"}


@contextmanager
def ray_cluster(root: Path, head_cpus: int = 1, worker_cpus: int = 1) -> Iterator[Cluster]:
    """A head (`head_cpus`) and one worker node (`worker_cpus`; 0: none) on loopback; all stopped at the end."""
    environ = cluster_environ()
    head = _start([*HEAD_ARGS, "--node-ip-address=127.0.0.1", f"--num-cpus={head_cpus}"],
                  root / "head", environ)
    cluster: Cluster | None = None
    try:
        address = _head_address(head)
        cluster = Cluster(address, environ, head)
        if worker_cpus:
            cluster.add_worker(root, worker_cpus, "worker")
        cluster.wait_for_nodes(1 + bool(worker_cpus))
        yield cluster
    finally:
        for node in [*(cluster.workers if cluster else []), head]:
            node.kill()


def _head_address(head: Node, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = head.log.read_text(errors="replace") if head.log.exists() else ""
        if found := re.search(r"ray start --address='[^:']+:(\d+)'", text):
            return f"127.0.0.1:{found.group(1)}"
        if head.process.poll() is not None:
            raise RuntimeError(f"the Ray head did not start: {text[-2000:]}")
        time.sleep(0.3)
    raise TimeoutError("the Ray head did not start in time")
