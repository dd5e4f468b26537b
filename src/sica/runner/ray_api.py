"""The few Ray calls the ray runner makes, typed, in one place: Ray ships no type information, and it is an
optional extra, imported only here and only when the ray runner is chosen (so `--runner local` needs none of it).
"""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Callable
from typing import Any, cast


class RayUnavailable(Exception):
    """Ray is not installed, or its cluster cannot be reached; one line naming the problem and the fix."""


def require_ray() -> Any:
    """The `ray` module, or a one-line error saying how to install it."""
    if importlib.util.find_spec("ray") is None:
        raise RayUnavailable(
            "--runner ray needs Ray, which is not installed: install the extra (`uv sync --extra ray`, or "
            "`pip install 'sica[ray]'`), or use --runner local"
        )
    import ray

    return ray


def connect(address: str | None) -> None:
    """Join the cluster at `address` (`host:port` of its head; None: the one this machine runs, else a new local
    one), once per process."""
    ray = require_ray()
    if ray.is_initialized():
        return
    if address is not None:
        _probe(address)
    try:
        ray.init(
            address=address,
            ignore_reinit_error=True,
            logging_level="warning",
            log_to_driver=False,
            configure_logging=True,
        )
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = address or "this machine"
        detail = " ".join(str(error).split())[:200]
        raise RayUnavailable(
            f"cannot reach the Ray cluster at {where} ({detail}): check --ray-address / [runner] address "
            "(the head's host:port, as `ray start --head` printed it)"
        ) from None


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast, in one line, on an address nothing listens at (Ray itself retries for minutes)."""
    host, _, port = address.rpartition(":")
    fix = "give the head's host:port as `ray start --head` printed it (--ray-address / [runner] address)"
    if not host or not port.isdigit():
        raise RayUnavailable(f"'{address}' is not a Ray cluster address: {fix}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise RayUnavailable(f"cannot reach the Ray cluster at {address} ({error.strerror or error}): {fix}") from None


def disconnect() -> None:
    """Leave the cluster (the cluster's nodes keep running)."""
    ray = require_ray()
    if ray.is_initialized():
        ray.shutdown()


def node_id() -> str:
    """The id of the node this code runs on."""
    ray = require_ray()
    return str(ray.get_runtime_context().get_node_id())


_REMOTES: dict[Callable[..., Any], Any] = {}


def submit(function: Callable[..., Any], *args: Any, cpus: float, memory_mb: int | None) -> Any:
    """Run `function(*args)` as a Ray task asking `cpus` (and `memory_mb`) of a node, spread over the nodes, never
    retried by Ray itself (the caller decides what a lost task means); its object ref."""
    ray = require_ray()
    remote = _REMOTES.get(function)
    if remote is None:
        remote = _REMOTES[function] = ray.remote(function)
    options: dict[str, Any] = {"num_cpus": cpus, "max_retries": 0, "scheduling_strategy": "SPREAD"}
    if memory_mb is not None:
        options["memory"] = memory_mb * (1 << 20)
    return remote.options(**options).remote(*args)


async def result(ref: Any) -> object:
    """What a task returned (raises what Ray raises for it)."""
    return cast(object, await ref)


def put(value: object) -> Any:
    """`value` in the cluster's object store, once, for many tasks."""
    return require_ray().put(value)


def cancel(ref: Any) -> None:
    """Stop a task (its worker process is killed, and with it the sandbox, which dies with its parent)."""
    require_ray().cancel(ref, force=True)


def lost_errors() -> tuple[type[BaseException], ...]:
    """What Ray raises for a task whose node or worker process died."""
    exceptions = require_ray().exceptions
    return (
        exceptions.NodeDiedError,
        exceptions.WorkerCrashedError,
        exceptions.ObjectLostError,
        exceptions.LocalRayletDiedError,
        exceptions.RaySystemError,
    )


def task_error() -> type[BaseException]:
    """What Ray raises for a task that raised."""
    return cast(type[BaseException], require_ray().exceptions.RayTaskError)


def cluster_cpus() -> float:
    """The CPUs of the cluster's live nodes."""
    return float(require_ray().cluster_resources().get("CPU", 1.0))
