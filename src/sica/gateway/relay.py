"""A relay on a worker node: a unix socket the sandbox mounts (as it would the gateway's own), whose connections are
forwarded byte for byte to the gateway's TCP address on the head. The sandbox's network stays closed: the socket is
its one way out, and it leads only to the gateway, which checks each call's bearer token and alias list itself.
The relay holds no key and reads nothing of what it forwards."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from sica.gateway.server import restrict_socket_folder
from sica.sandbox.mounts import SANDBOX_UID, drops_to_sandbox_uid

_CHUNK = 64 << 10


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


@contextlib.asynccontextmanager
async def gateway_relay(uds: Path, host: str, port: int) -> AsyncIterator[Path]:
    """Serve `uds` (in a folder of its own, restricted as the gateway's socket folder is) for the `async with`
    block, relaying every connection to `host:port`."""
    restrict_socket_folder(uds.parent, uds.name)
    uds.unlink(missing_ok=True)
    connections: set[asyncio.Task[None]] = set()

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))
        finally:
            for writer in (upstream_writer, client_writer):
                writer.close()

    def track(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(relay(reader, writer))
        connections.add(task)
        task.add_done_callback(connections.discard)

    server = await asyncio.start_unix_server(track, path=str(uds))
    if drops_to_sandbox_uid():
        os.chown(uds, 0, SANDBOX_UID)
        uds.chmod(0o660)
    else:
        uds.chmod(0o600)
    try:
        yield uds
    finally:
        server.close()
        for task in list(connections):
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        uds.unlink(missing_ok=True)
