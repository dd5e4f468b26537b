"""The inbox: messages the harness (the overseer) leaves in `logdir/inbox/<seq>.json` for running agents.

`{"type": "notify", "agent_id", "text"}` becomes a message to that agent before its next step;
`{"type": "cancel", "agent_id", "text"}` stops that agent and every agent it started.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Notice:
    kind: str
    agent_id: str
    text: str


class Inbox:
    """Reads new inbox files in order; remembers what it has read and which agents are cancelled."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._seen: set[str] = set()
        self._notes: dict[str, list[str]] = {}
        self._cancelled: dict[str, str] = {}

    def _poll(self) -> None:
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("*.json")):
            if path.name in self._seen:
                continue
            self._seen.add(path.name)
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
                notice = Notice(str(entry["type"]), str(entry["agent_id"]), str(entry.get("text", "")))
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if notice.kind == "cancel":
                self._cancelled[notice.agent_id] = notice.text
            elif notice.kind == "notify":
                self._notes.setdefault(notice.agent_id, []).append(notice.text)

    def notes_for(self, agent_id: str) -> list[str]:
        """Notifications for this agent not yet delivered."""
        self._poll()
        return self._notes.pop(agent_id, [])

    def cancellation(self, lineage: list[str]) -> str | None:
        """The reason this agent must stop, if it or any ancestor (its lineage, itself first) was cancelled."""
        self._poll()
        for agent_id in lineage:
            if agent_id in self._cancelled:
                return self._cancelled[agent_id] or "cancelled"
        return None
