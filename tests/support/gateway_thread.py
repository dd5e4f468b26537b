"""A real gateway served from a background thread, so tests can call it with the official (sync) SDKs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sica.config import Settings
from sica.gateway import Listen, RunningGateway, run_gateway


@contextmanager
def serve_in_thread(settings: Settings, ledger_path: Path, environ: Mapping[str, str] | None = None,
                    listen: Listen | None = None, also_tcp: Listen | None = None) -> Iterator[RunningGateway]:
    """Run `run_gateway` on its own event loop in a thread for the duration of the block."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Event | None = None
    holder: dict[str, Any] = {}

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        try:
            async with run_gateway(settings, environ or {}, ledger_path, listen or Listen(), also_tcp=also_tcp) as running:
                holder["running"] = running
                ready.set()
                await stop.wait()
        except BaseException as exc:
            holder["error"] = exc
            ready.set()
            raise

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    ready.wait(60)
    if "error" in holder:
        thread.join(5)
        raise holder["error"]
    try:
        yield holder["running"]
    finally:
        loop.call_soon_threadsafe(stop.set)  # type: ignore[union-attr]
        thread.join(60)
        loop.close()


