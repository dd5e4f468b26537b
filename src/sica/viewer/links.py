"""Which attempt folder holds a run's result of a problem. A run records what came of each (version, problem,
repeat), not where its attempt is; the results store records per attempt the hash of the agent code it ran
(`runner.results.agent_code_hash`), the problem, its evaluation and its folder. So a version's code hash is
computed here from its commit in `archive.git`, with read-only git plumbing (`ls-tree`, `cat-file`: no checkout,
which would write an index and attributes into the archive), and its results are the store's attempts of that
hash. Attempts of the run's own evaluations (the ledger's `eval ID` accounts) come first, in the order they
finished (repeat 0, 1, ...); a result the run took from the cache of another run is linked to the attempt whose
status and score it has."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path, PurePosixPath

from sica.archive import Run
from sica.archive.run_db import Evaluation
from sica.viewer.runs import connect_read_only
from sica.workspace.git import git
from sica.workspace.trees import SKIPPED

LINK_MODE = b"120000"
EXECUTABLE_MODE = b"100755"
FILE_MODES = (b"100644", EXECUTABLE_MODE)
_hashes: dict[tuple[str, str], str] = {}


def version_code_hash(run: Run, number: int) -> str:
    """`agent_code_hash` of the version's files, as a checkout of it would give, read from its commit."""
    commit = str(run.version(number).commit_sha)
    key = (str(run.git.git_dir), commit)
    if key not in _hashes:
        _hashes[key] = _tree_hash(run.git.git_dir, commit)
    return _hashes[key]


def _output(git_dir: Path, *args: str, stdin: bytes = b"") -> bytes:
    with tempfile.TemporaryFile() as out:
        git(*args, git_dir=git_dir, stdin=stdin, out=out)
        out.seek(0)
        return out.read()


def _tree_hash(git_dir: Path, commit: str) -> str:
    entries = []
    for entry in _output(git_dir, "ls-tree", "-r", "-z", "--full-tree", commit).split(b"\0"):
        if not entry:
            continue
        meta, path = entry.split(b"\t", 1)
        mode, kind, object_id = meta.split(b" ")
        relative = PurePosixPath(os.fsdecode(path))
        if kind == b"blob" and (mode == LINK_MODE or mode in FILE_MODES) and not set(SKIPPED) & set(relative.parts):
            entries.append((relative, mode, object_id.decode()))
    contents = dict(_blobs(git_dir, [sha for _, _, sha in entries]))
    digest = hashlib.sha256()
    for relative, mode, sha in sorted(entries, key=lambda entry: entry[0].parts):
        if mode == LINK_MODE:
            record: list[str | bool] = [str(relative), "link", os.fsdecode(contents[sha])]
        else:
            record = [str(relative), "file", mode == EXECUTABLE_MODE, hashlib.sha256(contents[sha]).hexdigest()]
        digest.update(json.dumps(record).encode() + b"\n")
    return digest.hexdigest()


def _blobs(git_dir: Path, shas: list[str]) -> Iterator[tuple[str, bytes]]:
    """Each blob's contents, through one `git cat-file --batch`."""
    if not shas:
        return
    data = _output(git_dir, "cat-file", "--batch", stdin="".join(f"{sha}\n" for sha in shas).encode())
    offset = 0
    while offset < len(data):
        header_end = data.index(b"\n", offset)
        sha, _, size = data[offset:header_end].split(b" ")
        start = header_end + 1
        yield sha.decode(), data[start : start + int(size)]
        offset = start + int(size) + 1


def run_evaluation_ids(database: Path) -> set[str]:
    """The evaluations the run ran itself: its ledger's `eval ID` accounts."""
    with closing(connect_read_only(database)) as db:
        try:
            rows = db.execute("SELECT name FROM accounts WHERE name LIKE 'eval %'").fetchall()
        except sqlite3.OperationalError:
            return set()
    return {row["name"].split(" ", 1)[1] for row in rows}


def attempt_links(run: Run, results_dir: Path, version: int) -> dict[tuple[str, int], str]:
    """(problem, repeat) → the folder, relative to `results_dir`, of the attempt behind each of the version's
    results (those found)."""
    store = results_dir / "results.sqlite"
    evaluations = run.evaluations(version, every_repeat=True)
    if not store.is_file() or not evaluations:
        return {}
    code = version_code_hash(run, version)
    with closing(connect_read_only(store)) as db:
        rows = db.execute(
            "SELECT eval_id, problem_id, status, score, folder, finished_at FROM results WHERE agent_hash = ?"
            " ORDER BY finished_at",
            (code,),
        ).fetchall()
    own = run_evaluation_ids(run.db.path)
    root = results_dir.resolve()
    links: dict[tuple[str, int], str] = {}
    by_problem: dict[str, list[sqlite3.Row]] = {}
    for row in rows:
        by_problem.setdefault(row["problem_id"], []).append(row)
    for e in evaluations:
        found = _attempt_of(e, by_problem.get(e.problem_id, []), own)
        if found is None:
            continue
        folder = Path(found).resolve()
        if folder.is_relative_to(root):
            links[(e.problem_id, e.repeat)] = str(folder.relative_to(root))
    return links


def _attempt_of(evaluation: Evaluation, rows: list[sqlite3.Row], own: set[str]) -> str | None:
    mine = [row for row in rows if row["eval_id"] in own]
    if evaluation.repeat < len(mine):
        return str(mine[evaluation.repeat]["folder"])
    alike = [row for row in rows if row["status"] == evaluation.status and row["score"] == evaluation.score]
    return str(alike[0]["folder"]) if alike else None
