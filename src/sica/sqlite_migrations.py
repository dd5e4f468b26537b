"""Bringing a SQLite database written by an older sica up to date, in place, keeping every row."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping


def add_missing_columns(db: sqlite3.Connection, table: str, columns: Mapping[str, str]) -> None:
    """Add each of `columns` (name → declaration, with a default for existing rows) that `table` lacks. `db` is
    in autocommit mode; the check is repeated under the write lock, so two processes opening an old database at
    once add each column once."""
    if not _missing(db, table, columns):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for name in _missing(db, table, columns):
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {columns[name]}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _missing(db: sqlite3.Connection, table: str, columns: Mapping[str, str]) -> list[str]:
    present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
    return [name for name in columns if name not in present]
