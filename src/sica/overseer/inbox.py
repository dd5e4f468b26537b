"""Writing to the agent contract's inbox: `logdir/inbox/<seq:06d>.json`, `{"type": "notify"|"cancel", "agent_id",
"text"}`, each file created atomically and never through a link the agent planted."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Literal

from sica.sandbox.untrusted import write_into_untrusted_folder

NoticeType = Literal["notify", "cancel"]
_SEQUENCE = re.compile(r"^(\d{1,9})\.json$")


def post_notice(logdir: Path, notice_type: NoticeType, agent_id: str, text: str) -> bool:
    """Leave a notice for `agent_id`, numbered after every notice already there (so it is read after them); False
    when the inbox cannot be written (the agent replaced it by a link or a file)."""
    inbox = logdir / "inbox"
    with contextlib.suppress(OSError):
        inbox.mkdir()
    if inbox.is_symlink() or not inbox.is_dir():
        return False
    taken = [int(m.group(1)) for entry in inbox.iterdir() if (m := _SEQUENCE.match(entry.name))]
    message = json.dumps({"type": notice_type, "agent_id": agent_id, "text": text}).encode()
    return write_into_untrusted_folder(inbox, f"{max(taken, default=-1) + 1:06d}.json", message)
