"""The overseer's record: every finding, judgement and action as a harness event, one JSON object a line, in a
file beside the agent's events but outside its sandbox (the attempt's folder), so the agent can neither write
nor erase it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Literal

RecordType = Literal["finding", "judgement", "review_ignored", "action"]
RECORD_VERSION = 1


class OverseerRecord:
    """Appends harness events to `path` (`{"v", "ts", "type", "data"}`), flushing each."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, record_type: RecordType, **data: Any) -> None:
        line = json.dumps({"v": RECORD_VERSION, "ts": time.time(), "type": record_type, "data": data}, default=str)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_record(path: Path) -> list[dict[str, Any]]:
    """The records of a finished attempt, oldest first."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
