"""`events.jsonl`: the agent's own account of its run, one JSON object a line, written as things happen.

Schema version 1, owned by the harness (`sica.events`): `v`, `ts`, `run`, `problem`, `agent_id`, `parent_id`,
`type` (agent_start, agent_end, llm_call, tool_call, tool_result, message, notification, error) and `data`.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


class EventLog:
    """Appends events to a file and flushes each one, so a live viewer and the overseer can follow."""

    def __init__(self, path: Path, run: str, problem: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        self._run = run
        self._problem = problem
        self._lock = threading.Lock()

    def emit(self, agent_id: str, parent_id: str | None, event_type: str, **data: Any) -> None:
        line = json.dumps(
            {
                "v": SCHEMA_VERSION,
                "ts": time.time(),
                "run": self._run,
                "problem": self._problem,
                "agent_id": agent_id,
                "parent_id": parent_id,
                "type": event_type,
                "data": data,
            },
            ensure_ascii=False,
            default=str,
        )
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()
