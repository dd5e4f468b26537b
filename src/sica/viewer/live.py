"""Live updates as server-sent events: an attempt's new events as they are written (from the live logdir while it
runs), and a signal when a running run's database changes, so its pages follow without a reload by hand."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path

from sica.archive.run import LOCK
from sica.events import EventReader
from sica.viewer.attempts import is_live, live_logdir
from sica.viewer.pages import event_row
from sica.viewer.runs import database_stamp, is_locked

POLL_S = 0.3
#: How long after its end an attempt's stream waits for its `outcome.json` (scoring comes after the agent's end).
OUTCOME_WAIT_S = 120.0
#: A comment line now and then keeps proxies and the browser from dropping a quiet stream.
KEEPALIVE_S = 15.0


def sse(kind: str, data: object) -> str:
    """One server-sent event: JSON data on one line (JSON escapes newlines, so nothing can end the event)."""
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def attempt_events(folder: Path, after: int, stopping: threading.Event | None = None) -> AsyncIterator[str]:
    """The attempt's events from number `after` on, as they come, then `end` once it is over (no `live.json`),
    nothing more is left to read and its `outcome.json` is written. Follows the live logdir while the attempt
    runs; when the attempt ends and its logdir is copied back, carries on from the same count in the kept file.
    Ends at once when `stopping` is set (the server is shutting down)."""
    index = 0
    path = live_logdir(folder) / "events.jsonl"
    reader = EventReader(path)
    quiet = waited = 0.0
    while not (stopping and stopping.is_set()):
        current = live_logdir(folder) / "events.jsonl"
        if current != path:
            path, reader, index = current, EventReader(current), 0
        sent = False
        for event in reader.new_events():
            if index >= after:
                yield sse("agent-event", event_row(index, event))
                sent = True
                after = index + 1
            index += 1
        if not sent and not is_live(folder):
            # The attempt has ended: its events are all kept; its outcome is written a moment later.
            waited += POLL_S
            if (folder / "outcome.json").is_file() or waited >= OUTCOME_WAIT_S:
                yield sse("end", {"events": index})
                return
        quiet = 0.0 if sent else quiet + POLL_S
        if quiet >= KEEPALIVE_S:
            quiet = 0.0
            yield ": keepalive\n\n"
        await asyncio.sleep(POLL_S)


async def run_changes(
    folder: Path, every_s: float = 1.0, stopping: threading.Event | None = None
) -> AsyncIterator[str]:
    """`changed` each time the run's database is written, while a writer holds the run; then `end` (at once when
    `stopping` is set)."""
    seen = database_stamp(folder)
    while is_locked(folder / LOCK) and not (stopping and stopping.is_set()):
        await asyncio.sleep(every_s)
        now = database_stamp(folder)
        if now != seen:
            seen = now
            yield sse("changed", {})
        else:
            yield ": keepalive\n\n"
    yield sse("end", {})
