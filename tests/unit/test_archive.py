"""The run folder: archive.git and run.sqlite kept in step, crash windows settled, references resolved (real git,
real SQLite, temporary folders)."""

from __future__ import annotations

import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest

from sica.archive import ArchiveError, Run, resolve_reference
from sica.archive.refs import parse_reference
from sica.archive.run import ARCHIVE, DATABASE
from sica.runner.environments import seed_agent_dir
from sica.workspace.git import SAFE_GIT
from tests.support.runs import Result, edited

SEED = seed_agent_dir()


def git(run_folder: Path, *args: str) -> str:
    return subprocess.run(["git", *SAFE_GIT, f"--git-dir={run_folder / ARCHIVE}", *args], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def run(tmp_path: Path):
    with Run.create(tmp_path / "runs" / "r1", SEED, {"loop": {"policy": "sica"}}) as opened:
        yield opened


@pytest.fixture
def lineage(run: Run, tmp_path: Path) -> Run:
    """Versions 1 (from 0), 2 (from 1) and 3 (from 0), each appending a line to CHANGELOG.md."""
    assert run.add_version(0, edited(run, 0, tmp_path / "e1", "one"), "adds one", "- one") == 1
    assert run.add_version(1, edited(run, 1, tmp_path / "e2", "two"), "adds two", "- two") == 2
    assert run.add_version(0, edited(run, 0, tmp_path / "e3", "three"), "adds three", "- three",
                           invalid_reason="its tests fail") == 3
    return run


def test_create_commits_the_seed_as_agent_0(run: Run, tmp_path: Path):
    folder = run.folder
    assert (folder / ARCHIVE / "HEAD").is_file() and (folder / DATABASE).is_file()
    assert git(folder, "rev-list", "--count", "agent-0") == "1"
    files = set(git(folder, "ls-tree", "-r", "--name-only", "agent-0").splitlines())
    assert "pyproject.toml" in files and "CHANGELOG.md" in files
    assert not [name for name in files if "__pycache__" in name or name.endswith(".pyc") or ".venv" in name]
    [version] = run.versions()
    assert (version.number, version.parent, version.state) == (0, None, "valid")
    assert version.commit_sha == git(folder, "rev-parse", "agent-0")
    assert run.db.get_state("config") == {"loop": {"policy": "sica"}}
    assert run.db.journal_mode() == "wal"
    out = run.checkout(0, tmp_path / "zero")
    assert (out / "pyproject.toml").read_bytes() == (SEED / "pyproject.toml").read_bytes()


def test_create_refuses_an_existing_run(run: Run):
    with pytest.raises(ArchiveError, match="already exists"):
        Run.create(run.folder, SEED, {})


def test_versions_are_commits_on_their_parents(lineage: Run, tmp_path: Path):
    folder = lineage.folder
    sha = {n: git(folder, "rev-parse", f"agent-{n}") for n in range(4)}
    assert git(folder, "rev-parse", "agent-1^") == sha[0]
    assert git(folder, "rev-parse", "agent-2^") == sha[1]
    assert git(folder, "rev-parse", "agent-3^") == sha[0]
    assert "adds two" in git(folder, "log", "-1", "--format=%B", "agent-2")
    assert [(v.number, v.parent, v.state, v.commit_sha) for v in lineage.versions()] == [
        (0, None, "valid", sha[0]), (1, 0, "valid", sha[1]), (2, 1, "valid", sha[2]), (3, 0, "invalid", sha[3])]
    assert lineage.version(3).invalid_reason == "its tests fail"

    changelog = (lineage.checkout(2, tmp_path / "two") / "CHANGELOG.md").read_text()
    assert changelog.endswith("one\ntwo\n")
    assert (lineage.checkout(3, tmp_path / "three") / "CHANGELOG.md").read_text().endswith("\nthree\n")
    diff = lineage.diff(2)
    assert "+two" in diff and "+one" not in diff and "CHANGELOG.md" in diff


def test_checkout_needs_an_empty_folder_and_a_known_version(lineage: Run, tmp_path: Path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ArchiveError, match="not empty"):
        lineage.checkout(1, tmp_path / "full")
    with pytest.raises(ArchiveError, match=r"agent-9 is not in run .* agent-0 to agent-3"):
        lineage.checkout(9, tmp_path / "nine")
    with pytest.raises(ArchiveError, match="agent-7 is not in run"):
        lineage.add_version(7, tmp_path / "full", "x", "x")


def test_a_pending_row_without_its_commit_is_deleted(lineage: Run):
    number = lineage.db.insert_pending_version(1, "crashed before git", "")
    assert number == 4
    assert lineage.resume_cleanup() == ["agent-4: pending without a commit; row deleted"]
    assert [v.number for v in lineage.versions()] == [0, 1, 2, 3]
    assert lineage.db.next_version_number() == 4


@pytest.mark.parametrize(("settle_as", "reason", "expected_reason"), [
    ("invalid", "its own tests fail", "its own tests fail"),  # the pending row says how validation went
    (None, None, "interrupted"),  # a row without a recorded validation never counts as valid
])
def test_a_committed_but_unmarked_version_is_settled(lineage: Run, tmp_path: Path, settle_as, reason,
                                                      expected_reason):
    """The crash came between the commit and its mark."""
    number = lineage.db.insert_pending_version(2, "crashed after git", "", settle_as, reason)
    commit = lineage.git.commit(edited(lineage, 2, tmp_path / "e4", "four"), lineage.git.commit_of(2), "agent-4")
    lineage.git.tag(number, commit)
    lineage.close()
    with Run.open(lineage.folder) as reopened:
        version = reopened.version(4)
        assert (version.state, version.invalid_reason, version.commit_sha) == ("invalid", expected_reason, commit)
        assert reopened.resume_cleanup() == []


def test_a_stray_tag_is_deleted(lineage: Run):
    lineage.git.tag(5, lineage.git.commit_of(1))
    assert lineage.resume_cleanup() == ["agent-5: tag without a row; tag deleted"]
    assert sorted(lineage.git.tags()) == [0, 1, 2, 3]


def test_a_running_meta_step_is_interrupted(lineage: Run):
    step = lineage.db.start_meta_step(iteration=1, meta_version=0, base_version=1)
    lineage.resume_cleanup()
    [settled] = lineage.db.meta_steps()
    assert (settled.id, settled.state, settled.error) == (step, "interrupted", "interrupted")


def test_one_writer_at_a_time(run: Run):
    with pytest.raises(ArchiveError, match="open for writing by pid"):
        Run.open(run.folder)
    with Run.open(run.folder, read_only=True) as reader:
        assert [v.number for v in reader.versions()] == [0]


def test_missing_or_corrupt_parts_give_one_line_errors(run: Run, tmp_path: Path):
    folder = run.folder
    run.close()
    for broken in (lambda: (folder / DATABASE).write_bytes(b"not a database at all" * 100),
                   lambda: (folder / DATABASE).unlink(),
                   lambda: sqlite3.connect(folder / DATABASE).close()):
        for leftover in folder.glob(DATABASE + "-*"):
            leftover.unlink()
        broken()
        with pytest.raises(ArchiveError) as error:
            Run.open(folder)
        assert "\n" not in str(error.value) and "start a new run" in str(error.value)
    with pytest.raises(ArchiveError, match="no such folder"):
        Run.open(tmp_path / "nowhere")


def test_a_missing_archive_gives_a_one_line_error(run: Run):
    folder = run.folder
    run.close()
    subprocess.run(["rm", "-rf", str(folder / ARCHIVE)], check=True)
    with pytest.raises(ArchiveError, match=r"archive.git is missing.*restore") as error:
        Run.open(folder)
    assert "\n" not in str(error.value)


def test_evaluations_are_idempotent_per_problem(lineage: Run):
    lineage.record_evaluation(1, Result("p1", 0.0, infra=True))
    lineage.record_evaluation(1, Result("p1", 1.0))
    lineage.record_evaluation(1, Result("p1", 1.0))
    lineage.record_evaluation(1, Result("p2", 0.5))
    lineage.record_evaluation(1, Result("h1", 0.0, part="holdout"))
    lineage.record_evaluation(2, Result("p1", 0.0))
    lineage.record_evaluation(2, Result("p2", 0.0, infra=True))
    assert [(e.problem_id, e.score, e.infra) for e in lineage.evaluations(1)] == [
        ("h1", 0.0, False), ("p1", 1.0, False), ("p2", 0.5, False)]
    assert [e.problem_id for e in lineage.evaluations(1, part="selection")] == ["p1", "p2"]
    summary = {row.number: row for row in lineage.summary()}
    assert (summary[0].children, summary[0].mean_score, summary[0].n) == (2, None, 0)
    assert (summary[1].parent, summary[1].children, summary[1].mean_score, summary[1].n) == (0, 1, 0.75, 2)
    assert (summary[2].mean_score, summary[2].n) == (0.0, 1)
    assert summary[3].state == "invalid" and summary[1].description == "adds one"
    with pytest.raises(ArchiveError, match="agent-8 is not in run"):
        lineage.record_evaluation(8, Result("p1", 1.0))


def test_a_run_from_an_older_sica_gets_the_new_columns_and_keeps_its_rows(lineage: Run):
    lineage.record_evaluation(1, Result("p1", 0.5))
    folder = lineage.folder
    lineage.close()
    with sqlite3.connect(folder / DATABASE) as db:
        db.execute("ALTER TABLE evaluations DROP COLUMN trace_summary")
    with Run.open(folder, read_only=True) as reader:  # a reader changes nothing and sees no account
        assert [(e.problem_id, e.trace_summary) for e in reader.evaluations(1)] == [("p1", "")]
    with Run.open(folder) as reopened:
        reopened.record_evaluation(1, Result("p2", 0.0, trace_summary="## Problem"))
        assert [(e.problem_id, e.score, e.trace_summary) for e in reopened.evaluations(1)] == [
            ("p1", 0.5, ""), ("p2", 0.0, "## Problem")]


def test_references_resolve_to_checkouts(lineage: Run, tmp_path: Path):
    runs, scratch = lineage.folder.parent, tmp_path / "scratch"
    lineage.record_evaluation(1, Result("p1", 0.5))
    lineage.record_evaluation(2, Result("p1", 0.9))
    lineage.record_evaluation(3, Result("p1", 1.0))
    lineage.close()
    with Run.create(runs / "r0", SEED, {}) as older:
        older.db.set_state("created_at", 0.0)

    def second(run: Run) -> int:
        return 2

    assert (resolve_reference("agent-2", runs, scratch, second) / "CHANGELOG.md").read_text().endswith("one\ntwo\n")
    assert resolve_reference("best", runs, scratch, second) == scratch / "r1-agent-2"
    assert resolve_reference("best", runs, scratch, best=lambda run: 1) == scratch / "r1-agent-1"
    assert resolve_reference("r1:agent-3", runs, scratch, second) == scratch / "r1-agent-3"
    assert resolve_reference(f"{runs / 'r0'}:agent-0", runs, scratch, second) == scratch / "r0-agent-0"
    assert resolve_reference("agent-2", runs, scratch, second) == scratch / "r1-agent-2"
    assert resolve_reference(str(SEED), runs, scratch, second) == SEED
    with pytest.raises(ArchiveError, match="agent-9 is not in run"):
        resolve_reference("agent-9", runs, scratch, second)
    with pytest.raises(ArchiveError, match="no run 'nope'"):
        resolve_reference("nope:best", runs, scratch, second)
    with pytest.raises(ArchiveError, match="unknown agent reference 'agent-x'"):
        parse_reference("agent-x")
    with pytest.raises(ArchiveError, match="no runs under"):
        resolve_reference("best", tmp_path / "empty", scratch, second)


def test_versions_keep_symlinks_and_modes_and_leave_caches_out(run: Run, tmp_path: Path):
    source = run.checkout(0, tmp_path / "e1")
    (source / "link").symlink_to("pyproject.toml")
    (source / "run.sh").write_text("#!/bin/sh\n")
    (source / "run.sh").chmod(0o755)
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (source / ".git").mkdir()
    (source / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (source / ".gitattributes").write_text("* filter=evil diff=evil\n")
    number = run.add_version(0, source, "links", "- links")
    out = run.checkout(number, tmp_path / "out")
    assert (out / "link").is_symlink() and (out / "link").readlink() == Path("pyproject.toml")
    assert (out / "run.sh").stat().st_mode & 0o111
    assert not (out / "__pycache__").exists() and not (out / ".git").exists()
    assert "+#!/bin/sh" in run.diff(number)


def test_repeats_are_stored_beside_the_first_evaluation_and_replaced_by_their_own_retries(lineage: Run):
    lineage.record_evaluation(1, Result("p1", 1.0))
    lineage.record_evaluation(1, Result("p2", 0.5))
    lineage.record_evaluation(1, Result("h1", 1.0, part="holdout"))
    assert lineage.repeats(1) == 1 and lineage.repeats(2) == 0
    lineage.record_evaluation(1, Result("p1", 0.0, infra=True), repeat=1)
    lineage.record_evaluation(1, Result("p1", 0.0), repeat=1)  # its retry replaces repeat 1 only
    lineage.record_evaluation(1, Result("p2", 1.0, trace_summary="## Problem"), repeat=1)
    lineage.record_evaluation(1, Result("p1", 0.0, status="tampered"), repeat=2)
    lineage.record_evaluation(2, Result("p1", 0.25), repeat=1)

    assert [(e.problem_id, e.repeat, e.score) for e in lineage.evaluations(1)] == [
        ("h1", 0, 1.0), ("p1", 0, 1.0), ("p2", 0, 0.5)]  # the first evaluation, as before repeats
    assert [(e.problem_id, e.repeat, e.score, e.infra, e.trace_summary)
            for e in lineage.evaluations(1, every_repeat=True)] == [
        ("h1", 0, 1.0, False, ""), ("p1", 0, 1.0, False, ""), ("p1", 1, 0.0, False, ""), ("p1", 2, 0.0, False, ""),
        ("p2", 0, 0.5, False, ""), ("p2", 1, 1.0, False, "## Problem")]
    assert [(e.problem_id, e.repeat) for e in lineage.scored(1)] == [("p1", 0), ("p2", 0)]
    assert [(e.problem_id, e.repeat) for e in lineage.scored(1, every_repeat=True)] == [
        ("p1", 0), ("p1", 1), ("p1", 2), ("p2", 0), ("p2", 1)]
    assert [(e.repeat, e.score) for e in lineage.evaluations(2, every_repeat=True)] == [(1, 0.25)]
    assert (lineage.repeats(1), lineage.repeats(2), lineage.repeats(3)) == (3, 2, 0)

    summary = {row.number: row for row in lineage.summary()}
    assert (summary[1].mean_score, summary[1].n) == (0.75, 2)  # repeat 0's problems only
    assert summary[1].tampered == 1  # caught in a repeat: still never the best
    assert (summary[2].mean_score, summary[2].n, summary[2].tampered) == (None, 0, 0)
    with pytest.raises(ArchiveError, match="numbered from 0"):
        lineage.record_evaluation(1, Result("p1", 1.0), repeat=-1)
    with pytest.raises(ArchiveError, match="agent-8 is not in run"):
        lineage.record_evaluation(8, Result("p1", 1.0), repeat=1)


#: `run.sqlite`'s tables as sica wrote them before repeats (the ledger's tables left out: a run may lack them).
SCHEMA_BEFORE_REPEATS = """
CREATE TABLE versions (
    number INTEGER PRIMARY KEY,
    parent INTEGER REFERENCES versions(number),
    commit_sha TEXT,
    description TEXT NOT NULL,
    change_log TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'valid', 'invalid')),
    settle_as TEXT CHECK (settle_as IN ('valid', 'invalid')),
    invalid_reason TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE evaluations (
    version INTEGER NOT NULL REFERENCES versions(number),
    problem_id TEXT NOT NULL,
    benchmark TEXT NOT NULL,
    part TEXT NOT NULL CHECK (part IN ('selection', 'holdout')),
    status TEXT NOT NULL,
    score REAL NOT NULL,
    cost_usd REAL NOT NULL,
    seconds REAL NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    details TEXT NOT NULL,
    infra INTEGER NOT NULL,
    created_at REAL NOT NULL,
    trace_summary TEXT NOT NULL DEFAULT '',
    UNIQUE (version, problem_id)
);
CREATE TABLE meta_steps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    iteration INTEGER NOT NULL,
    meta_version INTEGER NOT NULL REFERENCES versions(number),
    base_version INTEGER NOT NULL REFERENCES versions(number),
    state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed', 'interrupted')),
    started_at REAL NOT NULL,
    ended_at REAL,
    cost_usd REAL NOT NULL DEFAULT 0,
    result_version INTEGER REFERENCES versions(number),
    error TEXT
);
CREATE TABLE run_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
#: How sica recorded a problem's result before repeats.
INSERT_BEFORE_REPEATS = (
    "INSERT INTO evaluations (version, problem_id, benchmark, part, status, score, cost_usd, seconds, input_tokens,"
    " output_tokens, details, infra, created_at, trace_summary) VALUES (?, ?, 'toy', 'selection', 'done', ?, 0.01,"
    " 2.0, 100, 20, '', 0, 1.0, '') ON CONFLICT (version, problem_id) DO UPDATE SET score = excluded.score")


def tables_of(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with closing(sqlite3.connect(path)) as db:
        return {table: db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                for table in ("versions", "evaluations", "meta_steps", "run_state")}


def table_exists(path: Path, table: str) -> bool:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone() is not None


def test_a_run_from_before_repeats_opens_and_reads_unchanged(lineage: Run, tmp_path: Path):
    """A run.sqlite made by the schema of before repeats: a reader reads it as it is (no repeats, nothing
    added); a writer adds the repeats' table and loses no row; an older sica still records repeat 0 in it."""
    folder = lineage.folder
    lineage.close()
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as db:
        db.executescript(SCHEMA_BEFORE_REPEATS)
        db.execute("ATTACH ? AS made", (str(folder / DATABASE),))
        for table in ("versions", "run_state"):
            db.execute(f"INSERT INTO {table} SELECT * FROM made.{table}")
        db.execute("INSERT INTO meta_steps (iteration, meta_version, base_version, state, started_at, ended_at)"
                   " VALUES (1, 0, 0, 'done', 1.0, 2.0)")
        db.execute(INSERT_BEFORE_REPEATS, (1, "p1", 1.0))
        db.execute(INSERT_BEFORE_REPEATS, (1, "p2", 0.0))
        db.execute(INSERT_BEFORE_REPEATS, (2, "p1", 0.5))
    db.close()
    for leftover in folder.glob(DATABASE + "*"):
        leftover.unlink()
    old.rename(folder / DATABASE)
    before = tables_of(folder / DATABASE)

    with Run.open(folder, read_only=True) as reader:
        assert [(e.problem_id, e.repeat, e.score) for e in reader.evaluations(1, every_repeat=True)] == [
            ("p1", 0, 1.0), ("p2", 0, 0.0)]
        assert [e.score for e in reader.scored(1)] == [1.0, 0.0] and reader.repeats(1) == 1
        assert {row.number: (row.mean_score, row.n, row.tampered) for row in reader.summary()}[1] == (0.5, 2, 0)
        assert tables_of(folder / DATABASE) == before and not table_exists(folder / DATABASE, "repeat_evaluations")
        with Run.open(folder) as writer:  # the writer adds the table while the reader is open; the reader sees it
            writer.record_evaluation(1, Result("p1", 0.0), repeat=1)
            assert tables_of(folder / DATABASE) == before  # lossless: every old row as it was
        assert [(e.problem_id, e.repeat) for e in reader.evaluations(1, every_repeat=True)] == [
            ("p1", 0), ("p1", 1), ("p2", 0)]
        assert reader.repeats(1) == 2

    with sqlite3.connect(folder / DATABASE) as db:  # an older sica writing repeat 0 of the run as it now is
        db.execute(INSERT_BEFORE_REPEATS, (1, "p2", 0.75))
    db.close()
    with Run.open(folder, read_only=True) as reader:
        assert [(e.problem_id, e.repeat, e.score) for e in reader.evaluations(1, every_repeat=True)] == [
            ("p1", 0, 1.0), ("p1", 1, 0.0), ("p2", 0, 0.75)]
