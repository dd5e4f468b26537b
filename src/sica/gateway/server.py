"""Running a gateway: start the local model servers its aliases need, open the ledger, serve HTTP on a unix
socket or a loopback TCP port, and take it all down again on exit (also on errors and Ctrl-C)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
import uvicorn

from sica.config import Settings
from sica.gateway.app import create_app
from sica.gateway.gateway import Gateway
from sica.gateway.ledger import Ledger
from sica.gateway.routing import build_routes
from sica.sandbox.mounts import SANDBOX_UID, drops_to_sandbox_uid


class _ShutdownCancellation(logging.Filter):
    """Drops uvicorn's reports of the calls it cancels when shutting down (a call whose agent has gone, still
    waiting on a slow model): expected, and settled in the ledger at their worst case, not errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        cancelled = record.exc_info is not None and isinstance(record.exc_info[1], asyncio.CancelledError)
        return not (cancelled or "timeout graceful shutdown exceeded" in record.getMessage())


@contextlib.contextmanager
def _quiet_cancellations() -> Iterator[None]:
    quiet = _ShutdownCancellation()
    logger = logging.getLogger("uvicorn.error")
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


@dataclass(frozen=True)
class Listen:
    """Where to serve: a unix socket path (in a folder of its own, which the gateway restricts to the harness and
    the sandbox user), or a TCP host and port (port 0 picks a free one)."""

    uds: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0


@dataclass
class RunningGateway:
    """A gateway being served: its state and where clients reach it."""

    gateway: Gateway
    base_url: str
    uds: Path | None
    #: The TCP address remote workers reach (`host:port`), when it also listens on TCP beside its unix socket.
    tcp_address: tuple[str, int] | None = None

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        """An httpx client for this gateway (over the unix socket when there is one)."""
        transport = httpx.AsyncHTTPTransport(uds=str(self.uds)) if self.uds else None
        headers = {"authorization": f"Bearer {token}"} if token else None
        return httpx.AsyncClient(base_url=self.base_url, transport=transport, headers=headers, timeout=600)


@contextlib.asynccontextmanager
async def local_model_servers(settings: Settings, log_dir: Path) -> AsyncIterator[dict[str, str]]:
    """Start one llama.cpp server per local model the aliases name; yield model name → base URL."""
    from sica.bundled_models import resolve_model
    from sica.local_model import LocalModelServer, LocalModelServerError, ServeOptions, installed

    wanted = sorted({alias.model for alias in settings.models.values() if alias.provider == "local"})
    async with contextlib.AsyncExitStack() as stack:
        urls = {}
        for model in wanted:
            spec = resolve_model(model)
            path = installed(spec, settings.local.cache_dir)
            if path is None:
                raise LocalModelServerError(
                    f"local model {spec.short_name} is not installed in "
                    f"{settings.local.cache_dir}: run `sica models install {spec.short_name}`"
                )
            options = ServeOptions(
                model_path=path,
                n_parallel=settings.local.n_parallel,
                n_ctx=settings.local.n_ctx,
                threads=settings.local.threads,
                alias=spec.full_name,
            )
            server = LocalModelServer(
                options, log_dir / f"llama-{spec.short_name}.log", startup_timeout=settings.local.startup_timeout_s
            )
            await server.astart()
            stack.push_async_callback(server.aclose)
            urls[model] = server.base_url
        yield urls


def restrict_socket_folder(folder: Path, socket_name: str) -> None:
    """Whoever can connect to the socket can spend through the gateway: its folder becomes reachable only by the
    harness and the sandbox user (root's, with the sandbox user's group, 0750, when the harness is root; the
    harness's own, 0700, when the sandbox runs as the harness's user). So it must be a folder of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    if others := [entry.name for entry in folder.iterdir() if entry.name != socket_name]:
        raise ValueError(
            f"the gateway's socket needs a folder of its own: {folder} also holds {len(others)} other entries"
        )
    if drops_to_sandbox_uid():
        os.chown(folder, 0, SANDBOX_UID)
        folder.chmod(0o750)
    else:
        folder.chmod(0o700)


def _bound_socket(listen: Listen) -> socket.socket:
    if listen.uds is not None:
        restrict_socket_folder(listen.uds.parent, listen.uds.name)
        listen.uds.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(listen.uds))
        if drops_to_sandbox_uid():
            os.chown(listen.uds, 0, SANDBOX_UID)
            listen.uds.chmod(0o660)
        else:
            listen.uds.chmod(0o600)
    else:
        # IPPROTO_TCP, not 0: asyncio turns Nagle off only on sockets whose protocol says TCP, and with Nagle on
        # a response's body waits ~40 ms for the client's delayed ACK of its headers.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((listen.host, listen.port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class _EmbeddedServer(uvicorn.Server):
    """Signals belong to whoever embeds the gateway (Ctrl-C cancels the caller, which shuts this down)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def run_gateway(
    settings: Settings,
    environ: Mapping[str, str],
    ledger_path: Path,
    listen: Listen,
    log_dir: Path | None = None,
    also_tcp: Listen | None = None,
) -> AsyncIterator[RunningGateway]:
    """Serve a gateway in this event loop for the duration of the `async with` block; with `also_tcp`, on that
    TCP address too (for remote workers' sandboxes: the same accounts, tokens and alias lists)."""
    log_dir = log_dir or ledger_path.parent
    async with contextlib.AsyncExitStack() as stack:
        local_urls = await stack.enter_async_context(local_model_servers(settings, log_dir))
        session = await stack.enter_async_context(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=0), trust_env=False)
        )
        routes, redact = build_routes(settings, environ, session, local_urls)
        ledger = Ledger(ledger_path)
        stack.callback(ledger.close)
        gateway = Gateway(settings, routes, ledger, redact)
        sock = _bound_socket(listen)
        stack.callback(sock.close)
        sockets = [sock]
        if also_tcp is not None:
            tcp_sock = _bound_socket(Listen(host=also_tcp.host, port=also_tcp.port))
            stack.callback(tcp_sock.close)
            sockets.append(tcp_sock)
        config = uvicorn.Config(
            create_app(gateway),
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="none",
            http="httptools",
            timeout_graceful_shutdown=5,
        )
        server = _EmbeddedServer(config)
        task = asyncio.create_task(server.serve(sockets=sockets))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        if listen.uds is not None:
            base_url = "http://gateway"
        else:
            host, port = sock.getsockname()[:2]
            base_url = f"http://{host}:{port}"
        tcp_address = None
        if len(sockets) > 1:
            tcp_host, tcp_port = sockets[1].getsockname()[:2]
            tcp_address = (str(tcp_host), int(tcp_port))
        try:
            yield RunningGateway(gateway, base_url, listen.uds, tcp_address)
        finally:
            server.should_exit = True
            await gateway.drain()
            with _quiet_cancellations():
                await task
