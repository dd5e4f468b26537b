"""The gateway's ledger as the overseer reads it: read-only, the calls of one account and its descendants, with
what their stored bodies say (the model's text and native tool calls). The ledger is the harness's own record, so
an agent that writes no events, or false ones, is still seen through it."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sica.overseer.window import ModelCall, cut

_SUBTREE = """
WITH RECURSIVE tree(id) AS (
    SELECT id FROM accounts WHERE id = ?
    UNION SELECT a.id FROM accounts a JOIN tree t ON a.parent_id = t.id
)
"""
#: Characters of a stored body parsed (a body may hold a whole context).
BODY_CHARS = 1 << 20


class LedgerView:
    """Read-only queries on a ledger another process (the gateway) writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5, check_same_thread=False)
        self._db.row_factory = sqlite3.Row

    def close(self) -> None:
        self._db.close()

    def account_named(self, name: str) -> str | None:
        """The newest account of that name (an attempt's is `PROBLEM RUN`)."""
        row = self._db.execute("SELECT id FROM accounts WHERE name = ? ORDER BY rowid DESC LIMIT 1", (name,)).fetchone()
        return None if row is None else str(row["id"])

    def only_top_account(self) -> str | None:
        """The ledger's top account when there is exactly one (a `sica solve`'s ledger)."""
        rows = self._db.execute("SELECT id FROM accounts WHERE parent_id IS NULL LIMIT 2").fetchall()
        return str(rows[0]["id"]) if len(rows) == 1 else None

    def limit_usd(self, account_id: str) -> float | None:
        """The account's money limit (None: unlimited or unknown)."""
        row = self._db.execute("SELECT limit_nano FROM accounts WHERE id = ?", (account_id,)).fetchone()
        return None if row is None or row[0] is None else float(row[0]) / 1e9

    def calls_after(self, account_id: str, after_id: int) -> list[sqlite3.Row]:
        """The subtree's calls with an id above `after_id`, oldest first."""
        return self._db.execute(
            _SUBTREE + "SELECT * FROM calls WHERE account_id IN tree AND id > ? ORDER BY id", (account_id, after_id)
        ).fetchall()

    def spent_usd(self, account_id: str) -> float:
        """What the subtree has spent, calls in flight at their reserved worst case."""
        row = self._db.execute(
            _SUBTREE + "SELECT SUM(CASE WHEN status = 'pending' THEN reserved_nano ELSE cost_nano END) FROM calls "
            "WHERE account_id IN tree",
            (account_id,),
        ).fetchone()
        return float(row[0] or 0) / 1e9


def model_call(row: sqlite3.Row) -> ModelCall:
    """A settled ledger row as the window keeps it."""
    text, tool_calls = response_summary(row["response_body"])
    return ModelCall(
        id=int(row["id"]),
        account_id=str(row["account_id"]),
        started_at=float(row["started_at"]),
        status=str(row["status"]),
        http_status=row["http_status"],
        error_class=row["error_class"],
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        cost_usd=int(row["cost_nano"]) / 1e9,
        seconds=float((row["ended_at"] or row["started_at"]) - row["started_at"]),
        text=text,
        tool_calls=tool_calls,
    )


def response_summary(body: str | None) -> tuple[str, int | None]:
    """The text of a stored response (either wire, whole or streamed, or an error) and how many native tool calls
    it made; ("", None) when there is no body or it cannot be read."""
    if not body:
        return "", None
    body = body[:BODY_CHARS]
    stripped = body.lstrip()
    if stripped.startswith(("data:", "event:")):
        return _stream_summary(stripped)
    with contextlib.suppress(ValueError):
        payload = json.loads(body)
        if isinstance(payload, dict):
            return _payload_summary(payload)
    return cut(body, 300), None


def _payload_summary(payload: dict[str, Any]) -> tuple[str, int | None]:
    error = payload.get("error")
    if isinstance(error, dict):
        return cut(str(error.get("message", error))), 0
    choices = payload.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message") or {}
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        return cut(str(content or "")), len(calls) if isinstance(calls, list) else 0
    content = payload.get("content")
    if isinstance(content, list):
        blocks = [block for block in content if isinstance(block, dict)]
        text = " ".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
        return cut(text), sum(1 for b in blocks if b.get("type") == "tool_use")
    return cut(json.dumps(payload)[:2000], 300), None


def _stream_payloads(body: str) -> Iterator[dict[str, Any]]:
    for line in body.splitlines():
        if not line.startswith("data:"):
            continue
        with contextlib.suppress(ValueError):
            payload = json.loads(line[5:].strip())
            if isinstance(payload, dict):
                yield payload


def _stream_summary(body: str) -> tuple[str, int]:
    texts: list[str] = []
    calls: set[object] = set()
    for payload in _stream_payloads(body):
        for choice in payload.get("choices") or []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                texts.append(str(delta.get("content") or ""))
                for call in delta.get("tool_calls") or []:
                    calls.add(call.get("index") if isinstance(call, dict) else None)
        block = payload.get("content_block")
        if isinstance(block, dict) and block.get("type") == "tool_use":
            calls.add(payload.get("index"))
        delta = payload.get("delta")
        if isinstance(delta, dict) and delta.get("type") == "text_delta":
            texts.append(str(delta.get("text", "")))
    return cut("".join(texts)), len(calls)
