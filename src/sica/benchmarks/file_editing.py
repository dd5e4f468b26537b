"""`file_editing`: turn a file into its next released version, after the file-editing benchmark of the SICA
paper (Robeyns et al. 2025). Built from pairs of releases of real packages (sdists, pinned in `PAIRS`): every
Python file present in both releases whose change is real but not huge is a problem. The starting tree holds the
old file at its path; the statement gives the new content in full; the scorer (`scorers/edit_score.py`, which
documents the formula) compares the line changes made with the target's, the target kept in its hidden folder."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from sica.benchmarks.base import BenchmarkContext, Problem, Score, fingerprint
from sica.benchmarks.generated import cached_rows, round_robin
from sica.benchmarks.scorers import edit_score, run_scorer
from sica.benchmarks.sdists import fetch_sdist
from sica.sandbox import Sandbox

NAME = "file_editing"
#: (package, old release, new release): the releases compared, in the order their problems are interleaved.
PAIRS: tuple[tuple[str, str, str], ...] = (
    ("toolz", "0.11.2", "0.12.0"),
    ("attrs", "23.1.0", "23.2.0"),
    ("packaging", "23.1", "23.2"),
    ("pluggy", "1.3.0", "1.4.0"),
    ("idna", "3.4", "3.5"),
    ("toolz", "0.12.0", "0.12.1"),
    ("click", "8.1.6", "8.1.7"),
    ("itsdangerous", "2.1.1", "2.1.2"),
    ("idna", "3.6", "3.7"),
)
#: Bump when a change of this code changes the problems, so that cached sets are rebuilt (changes of the
#: constants below rebuild them by themselves).
GENERATOR = 1
#: A file qualifies when both versions have this many lines (and the new one at most MAX_CHARS characters)…
LINES = (20, 800)
MAX_CHARS = 32_000
#: …and the edit is this many line changes (removed plus added lines), at most MAX_SHARE of the new file's lines.
CHANGES = (2, 120)
MAX_SHARE = 0.5


@dataclass(frozen=True)
class EditTask:
    """One file to edit: `original` (from `package` `old`) becomes `target` (from `new`), at `path`."""

    id: str
    package: str
    old: str
    new: str
    path: str
    original: str
    target: str


def edit_tasks(context: BenchmarkContext, pairs: tuple[tuple[str, str, str], ...]) -> list[EditTask]:
    """The tasks of `pairs`, generated once and then read from the cache."""
    key = {"generator": GENERATOR, "pairs": pairs, "lines": LINES, "max_chars": MAX_CHARS, "changes": CHANGES,
           "max_share": MAX_SHARE}
    rows = cached_rows(context, NAME, key, lambda: [dataclasses.asdict(task) for task in generate(context, pairs)])
    return [EditTask(**row) for row in rows]


def generate(context: BenchmarkContext, pairs: tuple[tuple[str, str, str], ...]) -> list[EditTask]:
    """Every qualifying file of every pair (by path within a pair), the pairs interleaved."""
    groups = []
    for package, old, new in pairs:
        old_tree, new_tree = fetch_sdist(f"{package}=={old}", context), fetch_sdist(f"{package}=={new}", context)
        context.on_progress(f"comparing {package} {old} → {new}")
        groups.append([EditTask(f"{NAME}/{package}-{old}-{new}/{path}", package, old, new, path, original, target)
                       for path, original, target in _changed_files(old_tree, new_tree)])
    tasks = round_robin(groups)
    context.on_progress(f"{len(tasks)} problems")
    return tasks


def _changed_files(old_tree: Path, new_tree: Path) -> list[tuple[str, str, str]]:
    """(path, old content, new content) of the qualifying Python files in both trees, sorted by path."""
    found = []
    for new_file in sorted(new_tree.rglob("*.py")):
        path = new_file.relative_to(new_tree).as_posix()
        old_file = old_tree / path
        if new_file.is_symlink() or old_file.is_symlink() or not old_file.is_file():
            continue
        try:
            original, target = old_file.read_text(encoding="utf-8"), new_file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if _qualifies(original, target):
            found.append((path, original, target))
    return found


def _qualifies(original: str, target: str) -> bool:
    if original == target or "\r" in original + target or len(target) > MAX_CHARS:
        return False
    if not all(LINES[0] <= len(text.splitlines()) <= LINES[1] for text in (original, target)):
        return False
    changed = sum(edit_score.changes(original, target).values())
    return CHANGES[0] <= changed <= CHANGES[1] and changed <= MAX_SHARE * len(target.splitlines())


def problem(task: EditTask) -> Problem:
    """The problem of one task: the original laid out at its path, the target in the statement only."""

    def lay_out(dest: Path) -> None:
        file = dest / task.path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(task.original, encoding="utf-8")

    def score(sandbox: Sandbox, final_tree: Path, answer: str | None) -> Score:
        data = {"path.txt": task.path, "original.txt": task.original, "target.txt": task.target}
        return run_scorer(sandbox, final_tree, edit_score, data)

    return Problem(task.id, NAME, statement(task), lay_out, score,
                   fingerprint=fingerprint(task.original, task.target, Path(edit_score.__file__)))


def statement(task: EditTask) -> str:
    """What the agent is asked: the path, the releases, and the target in a fence longer than any backquote run
    in it (whether it ends with a newline is said in words: a fence cannot show it)."""
    fence = "`" * max([3, *(len(run) + 1 for run in re.findall("`+", task.target))])
    body = task.target.removesuffix("\n")
    ending = "ends with a newline" if task.target.endswith("\n") else "does not end with a newline"
    return (f"Edit `{task.path}` so that its content becomes exactly the target below: the file as released in "
            f"{task.package} {task.new} (it now holds the {task.old} version). Use your file-editing tools and "
            "change nothing else. The result must match the target character for character, indentation, blank "
            f"lines and trailing spaces included; the target {ending}.\n\n"
            f"Target content of `{task.path}`:\n\n{fence}python\n{body}\n{fence}\n")


def open_file_editing(context: BenchmarkContext, count: int | None) -> list[Problem]:
    """Every problem (the set is generated whole, once, so `count` changes nothing)."""
    return [problem(task) for task in edit_tasks(context, PAIRS)]
