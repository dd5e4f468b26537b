"""`file_editing` and `symbol_location` on real sdists (fetched once into the shared benchmark cache) and the real
bubblewrap sandbox: known-good solutions score 1.0, the untouched start 0, partial solutions the documented
partial score; hidden targets and answers never enter the starting tree; generation is deterministic and cached.
The scoring formulas are also checked directly on small strings."""

from __future__ import annotations

import difflib
import os
import socket
import tempfile
import time
from pathlib import Path

import pytest
import uv

from sica.benchmarks import BenchmarkContext, BenchmarkError, open_benchmark
from sica.benchmarks import file_editing, symbol_location
from sica.benchmarks.file_editing import EditTask, edit_tasks
from sica.benchmarks.scorers.edit_score import changes, edit_score
from sica.benchmarks import scorers
from sica.benchmarks.scorers.location_score import location_score, parse_answer
from sica.benchmarks.sdists import SdistError, fetch_sdist
from sica.benchmarks.symbol_location import locate_tasks
from sica.config import default_envs_dir

CACHE = Path.home() / ".cache/sica/benchmarks"
PAIRS = (("toolz", "0.12.0", "0.12.1"),)
PACKAGES = ("toolz==0.12.1",)


@pytest.fixture(scope="module")
def context():
    return BenchmarkContext(CACHE, default_envs_dir(os.geteuid()), uv.find_uv_bin())


@pytest.fixture
def fresh(tmp_path, context):
    """A context with an empty cache of generated sets (the sdists are shared) that records its progress."""
    (CACHE / "sdists").mkdir(parents=True, exist_ok=True)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "sdists").symlink_to(CACHE / "sdists")
    messages: list[str] = []
    return BenchmarkContext(tmp_path / "cache", context.envs_dir, context.uv_bin, on_progress=messages.append), messages


def files_of(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


# The formulas, on small strings.

def test_changes_are_removed_and_added_lines():
    assert changes("a\nb\nc\n", "a\nB\nc\nd\n") == {("-", "b\n"): 1, ("+", "B\n"): 1, ("+", "d\n"): 1}


@pytest.mark.parametrize(("final", "expected"), [
    ("a\nb\nc\nd\n", 0.0),                                          # untouched: nothing made, P = R = 0
    ("a\nB\nc\nD\n", 1.0),                                          # exact
    ("a\nB\nc\nd\nx\n", 0.4 * 2 / 3 + 0.6 * 2 / 4 - 0.3 * 1 / 4),   # 2 of 4 wanted, 1 extra: P 2/3, R 1/2
    ("a\nB\nc\nD", 0.4 * 3 / 4 + 0.6 * 3 / 4 - 0.3 * 1 / 4),        # "D" without its newline is not "D\n"
    ("a\nb\nc\nd\nq\n", 0.0),                                       # only an extra line: 0 - 0.15, clamped
    ("", 0.4 * 2 / 4 + 0.6 * 2 / 4 - 0.3 * 2 / 4),                  # all deleted: 2 of the 4 removals wanted
    (None, 0.0),                                                    # the file is gone
])
def test_edit_score_formula(final, expected):
    value, details = edit_score("a\nb\nc\nd\n", "a\nB\nc\nD\n", final)
    assert value == pytest.approx(expected) and details


def test_edit_score_below_one_unless_exact():
    assert edit_score("a\nb\n", "a\nb\nz\n", "z\na\nb\n")[0] == 0.99  # the right line in the wrong place


@pytest.mark.parametrize(("answer", "expected"), [
    ("toolz/itertoolz.py:813:5", 1.0),
    ("  ./toolz/itertoolz.py:813:5\n", 1.0),
    ("`toolz/itertoolz.py:813:5`", 1.0),
    ("It is defined at toolz/itertoolz.py:813:5, the def of join.", 1.0),
    ("/work/toolz/itertoolz.py:813:5", 1.0),
    ("toolz/itertoolz.py:813:6", 0.8),
    ("toolz/itertoolz.py:813", 0.8),
    ("toolz/itertoolz.py:812:5", 0.4),
    ("toolz/functoolz.py:813:5", 0.0),
    ("line 813, column 5", 0.0),
    ("toolz/itertoolz.py:" + "8" * 5000 + ":5", 0.0),    # too long a number: no place, not a crash
    ("toolz/itertoolz.py:813:" + "5" * 5000, 0.8),
    ("\0toolz/itertoolz.py:813:5", 0.0),
    ("", 0.0),
    (None, 0.0),
])
def test_location_score_formula_and_answer_reading(answer, expected):
    assert location_score("toolz/itertoolz.py:813:5", answer, "/work")[0] == expected


def test_location_details_show_no_control_characters():
    details = location_score("toolz/itertoolz.py:813:5", "\x1b\0x.py:1:2", "/work")[1]
    assert details == "answered ??x.py:1:2: wrong file"


@pytest.mark.parametrize("answer", ["a" * 65536, ".py" * 21845, "x.py:" * 13107, "./" * 32768 + "x.py:1:1"])
def test_reading_a_hostile_answer_takes_linear_time(answer):
    started = time.monotonic()
    parse_answer(answer, "/work")
    assert time.monotonic() - started < 1.5  # a backtracking search took 8 to 16 s on the first two


# file_editing

@pytest.fixture(scope="module")
def toolz_edits(context):
    return edit_tasks(context, PAIRS)


def test_file_editing_lays_out_the_original_only_and_scores_target_one_start_zero(toolz_edits, sandbox):
    assert [task.path for task in toolz_edits] == ["setup.py", "toolz/_signatures.py", "toolz/_version.py",
                                                   "toolz/tests/test_itertoolz.py"]
    for task in toolz_edits:
        problem = file_editing.problem(task)
        assert problem.id == f"file_editing/toolz-0.12.0-0.12.1/{task.path}"
        assert task.target.removesuffix("\n") in problem.statement
        with tempfile.TemporaryDirectory(prefix="sica-bench-test-") as folder:
            start = Path(folder)
            start.chmod(0o755)
            problem.lay_out(start)
            assert files_of(start) == {task.path: task.original}  # the target stays out of the tree
            assert problem.score(sandbox, start, None).value == 0.0
            (start / task.path).write_text(task.target)
            solved = problem.score(sandbox, start, None)
            assert solved.value == 1.0, solved.details


def test_file_editing_partial_scores(toolz_edits, tree, sandbox):
    hand_made = EditTask("file_editing/hand/x.py", "hand", "1", "2", "x.py", "a\nb\nc\nd\n", "a\nB\nc\nD\n")
    problem = file_editing.problem(hand_made)
    problem.lay_out(tree)
    (tree / "x.py").write_text("a\nB\nc\nd\nx\n")
    partial = problem.score(sandbox, tree, None)
    assert partial.value == 0.4917 and "2 of 4 target line changes made, 1 other" in partial.details  # see above

    task = next(task for task in toolz_edits if task.path == "toolz/tests/test_itertoolz.py")
    old, new = task.original.splitlines(keepends=True), task.target.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    _, i1, i2, j1, j2 = next(op for op in matcher.get_opcodes() if op[0] != "equal")
    first_hunk_only = "".join(old[:i1] + new[j1:j2] + old[i2:])
    problem = file_editing.problem(task)
    problem.lay_out(tree)
    (tree / task.path).write_text(first_hunk_only)
    recall = (i2 - i1 + j2 - j1) / sum(changes(task.original, task.target).values())
    assert problem.score(sandbox, tree, None).value == round(0.4 + 0.6 * recall, 4) < 1.0  # precision 1


HAND_MADE = EditTask("file_editing/hand/pkg/x.py", "hand", "1", "2", "pkg/x.py", "a\nb\nc\nd\n", "a\nB\nc\nD\n")


def replaced_by(make):
    """A plant that removes the edited file, then calls `make(edited)`."""
    return lambda edited: (edited.unlink(), make(edited))


def linked_to(*targets):
    """A plant that replaces the edited file by a link to `targets[0]`, itself a link to `targets[1]`..."""
    def plant(edited):
        edited.unlink()
        for place, target in zip([edited, *(edited.parent / f"hop{n}" for n in range(len(targets)))], targets):
            place.symlink_to(target)
    return plant


def folder_moved(make):
    """A plant that moves the edited file's folder to `real`, then calls `make(folder)`."""
    return lambda edited: (edited.parent.rename(edited.parent.with_name("real")), make(edited.parent))


@pytest.mark.parametrize(("plant", "evidence", "reason"), [
    (linked_to("/proc/self/cwd/target.txt"), True, "is a link out of the working directory, to /proc"),
    (linked_to("/dev/stdin"), True, "to /dev"),
    (linked_to("../../target.txt"), True, "above the tree"),
    (linked_to("hop0", "./hop1", "/tmp/sica-scorer-guess/target.txt"), True, "to /tmp"),
    (linked_to("hop0", "../../etc/passwd"), True, "above the tree"),
    (folder_moved(lambda folder: folder.symlink_to("/proc/self/cwd")), True, "its folder pkg is a link out"),
    (linked_to("hop0", "../real.py"), False, "is a link within the working directory, not a file"),
    (folder_moved(lambda folder: folder.symlink_to("real")), False,
     "its folder pkg is a link within the working directory, not a folder"),
    (linked_to("hop0", "x.py"), False, "within the working directory"),
    (replaced_by(os.mkfifo), False, "a FIFO, not a regular file"),
    (replaced_by(lambda edited: socket.socket(socket.AF_UNIX).bind(str(edited))), False, "a socket, not a"),
    (replaced_by(Path.mkdir), False, "a folder, not a regular file"),
    (folder_moved(lambda folder: folder.write_text("")), False, "pkg is a regular file, not a folder"),
    (lambda edited: os.truncate(edited, 2 << 30), False, "larger than the 131072 bytes scored"),
    (folder_moved(lambda folder: None), False, "the file is missing"),
])
def test_edited_file_is_read_only_as_a_regular_file_through_real_folders(tree, sandbox, plant, evidence, reason):
    """What the agent may leave at the edited path scores 0 with the reason, unread (a 2 GB sparse file was
    copied and read whole); a link out of the tree on its way is tampering (`/proc/self/cwd/target.txt`, the
    scorer's own folder, scored 1.0)."""
    problem = file_editing.problem(HAND_MADE)
    problem.lay_out(tree)
    (tree / "real.py").write_text(HAND_MADE.target)
    plant(tree / "pkg/x.py")
    score = problem.score(sandbox, tree, None)
    assert score.value == 0.0 and reason in score.details and (score.tampered is not None) == evidence, score


def test_edited_file_with_nul_bytes_and_invalid_utf8_is_scored(tree, sandbox):
    problem = file_editing.problem(HAND_MADE)
    problem.lay_out(tree)
    (tree / "pkg/x.py").write_bytes(b"a\nB\xff\x00\nc\nD\n")
    score = problem.score(sandbox, tree, None)
    assert 0.0 < score.value < 1.0 and "3 of 4 target line changes made" in score.details, score


def test_scorers_get_hidden_material_on_standard_input_only(tree, sandbox, monkeypatch):
    """The sandboxed scorer's folder holds its script only and its tree is empty: the target and the expected
    place come on standard input, in no file a link could name."""
    seen = []
    real_run_checks = scorers.run_checks

    def watched(sandbox, final_tree, hidden, command, **options):
        seen.append((sorted(p.name for p in hidden.iterdir()), list(final_tree.iterdir()), options["stdin"]))
        return real_run_checks(sandbox, final_tree, hidden, command, **options)

    monkeypatch.setattr(scorers, "run_checks", watched)
    problem = file_editing.problem(HAND_MADE)
    problem.lay_out(tree)
    (tree / "pkg/x.py").write_text(HAND_MADE.target)
    assert problem.score(sandbox, tree, None).value == 1.0
    located = symbol_location.problem(symbol_location.LocateTask("s/x.py:1:1", "x==1", "f", "x.py:1:1", "f()",
                                                                 "pkg/x.py:3:5"), tree)
    assert located.score(sandbox, tree, "pkg/x.py:3:5").value == 1.0
    assert [(files, tree_files) for files, tree_files, _ in seen] == [(["score.py"], [])] * 2
    assert b"a\\nB\\nc\\nD\\n" in seen[0][2] and b"pkg/x.py:3:5" in seen[1][2]


def test_file_editing_generation_is_deterministic_and_cached(fresh):
    context, messages = fresh
    assert file_editing.generate(context, PAIRS) == file_editing.generate(context, PAIRS)
    messages.clear()
    first = edit_tasks(context, PAIRS)
    assert "comparing toolz 0.12.0 → 0.12.1" in messages and len(list((context.cache_dir / "generated").iterdir())) == 1
    messages.clear()
    assert edit_tasks(context, PAIRS) == first and messages == []


# symbol_location

@pytest.fixture(scope="module")
def toolz_locations(context):
    return locate_tasks(context, PACKAGES)


def test_symbol_location_answers_are_definitions(toolz_locations, context):
    source = fetch_sdist(PACKAGES[0], context)
    assert len(toolz_locations) == symbol_location.PER_PACKAGE
    for task in toolz_locations:
        path, line, col = task.definition.rsplit(":", 2)
        text = (source / path).read_text().split("\n")[int(line) - 1]
        name = text[int(col) - 1:].split("(")[0].split(":")[0]
        assert text[:int(col) - 1].strip() in ("def", "async def", "class") and name.isidentifier(), task
        usage_path, usage_line, usage_col = task.usage.rsplit(":", 2)
        used = (source / usage_path).read_text().split("\n")[int(usage_line) - 1]
        assert used == task.line and used[int(usage_col) - 1:].startswith(task.symbol.split(".")[-1])


def test_symbol_location_scores_through_the_sandbox(toolz_locations, context, tree, sandbox):
    task = toolz_locations[0]
    problem = symbol_location.problem(task, fetch_sdist(PACKAGES[0], context))
    assert task.usage in problem.statement and task.symbol in problem.statement
    problem.lay_out(tree)
    laid_out = files_of(tree)
    source = fetch_sdist(PACKAGES[0], context)
    assert sorted(laid_out) == sorted(p.relative_to(source).as_posix() for p in source.rglob("*.py"))
    assert not any(task.definition in text for text in laid_out.values())  # the answer is nowhere in the tree
    path, line, col = task.definition.rsplit(":", 2)
    answers = [task.definition, f"It is `./{task.definition}`.", f"{path}:{line}:{int(col) + 1}",
               f"{path}:{int(line) + 1}:{col}", f"nowhere/else.py:{line}:{col}", None]
    assert [problem.score(sandbox, tree, answer).value for answer in answers] == [1.0, 1.0, 0.8, 0.4, 0.0, 0.0]


def test_symbol_location_generation_is_deterministic_and_cached(fresh, monkeypatch):
    context, messages = fresh
    assert symbol_location.generate(context, PACKAGES) == symbol_location.generate(context, PACKAGES)
    monkeypatch.setattr(symbol_location, "PACKAGES", PACKAGES)
    messages.clear()
    every = open_benchmark("symbol_location", context)
    assert "resolving symbols in toolz==0.12.1" in messages
    messages.clear()
    assert [p.id for p in open_benchmark("symbol_location:3", context)] == [p.id for p in every[:3]]
    assert messages == []
    with pytest.raises(BenchmarkError, match="symbol_location has only 6 problems"):
        open_benchmark("symbol_location:7", context)


# sdists

def test_fetch_sdist_caches_the_unpacked_tree(tmp_path, context):
    messages: list[str] = []
    own = BenchmarkContext(tmp_path, context.envs_dir, context.uv_bin, on_progress=messages.append)
    source = fetch_sdist("toolz==0.12.1", own)
    assert source == tmp_path / "sdists" / "toolz-0.12.1" and (source / "toolz" / "itertoolz.py").is_file()
    assert messages == ["fetching toolz==0.12.1"]
    assert fetch_sdist("toolz==0.12.1", own) == source and messages == ["fetching toolz==0.12.1"]


@pytest.mark.parametrize(("requirement", "message"), [
    ("toolz", "'toolz' must pin one version: name==version"),
    ("toolz==0.0.404", "resolving toolz==0.0.404 failed"),
])
def test_fetch_sdist_bad_requirement_is_one_line(tmp_path, context, requirement, message):
    own = BenchmarkContext(tmp_path, context.envs_dir, context.uv_bin)
    with pytest.raises(SdistError, match=message) as raised:
        fetch_sdist(requirement, own)
    assert "\n" not in str(raised.value)


# The whole pinned sets: every sdist of both benchmarks.

@pytest.mark.slow
@pytest.mark.parametrize("name", ["file_editing", "symbol_location"])
def test_whole_sets_open_in_a_fixed_order_and_known_good_solutions_score_one(name, context, sandbox):
    problems = open_benchmark(name, context)
    assert len(problems) >= 40 and len({p.id for p in problems}) == len(problems)
    assert [p.id for p in open_benchmark(f"{name}:5", context)] == [p.id for p in problems[:5]]
    with pytest.raises(BenchmarkError, match=f"has only {len(problems)} problems"):
        open_benchmark(f"{name}:{len(problems) + 1}", context)
    if name == "file_editing":
        solutions = [(task.path, task.target) for task in edit_tasks(context, file_editing.PAIRS)]
    else:
        solutions = [task.definition for task in locate_tasks(context, symbol_location.PACKAGES)]
    for problem, solution in zip(problems, solutions, strict=True):
        with tempfile.TemporaryDirectory(prefix="sica-bench-test-") as folder:
            start = Path(folder)
            start.chmod(0o755)
            problem.lay_out(start)
            if isinstance(solution, tuple):
                (start / solution[0]).write_text(solution[1])
                result = problem.score(sandbox, start, None)
            else:
                result = problem.score(sandbox, start, solution)
            assert result.value == 1.0, (problem.id, result.details)
