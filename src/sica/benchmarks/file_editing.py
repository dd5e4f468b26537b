"""`file_editing`: turn a file into its next released version, after the file-editing benchmark of the SICA
paper (Robeyns et al. 2025). Built from pairs of releases of real packages (sdists, pinned in `PAIRS`): every
Python file present in both releases whose change is real but not huge is a problem. The starting tree holds the
old file at its path; the statement gives the new content in full; the scorer (`scorers/edit_score.py`, which
documents the formula) compares the line changes made with the target's.

The edited file is the agent's and may be a trap: `read_edited` takes it only as a regular file of bounded size
reached through real folders, opening each component without following a link; a link there that leaves the
tree (into /proc, /dev or the scorer's folder, where a target could be read) is tampering. The sandboxed scorer
gets the file's text and the target on standard input, on an empty tree: no path the agent can plant names
them."""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sica.benchmarks.base import BenchmarkContext, Problem, Score
from sica.benchmarks.generated import cached_rows, round_robin
from sica.benchmarks.scorers import edit_score, script_problem
from sica.benchmarks.sdists import fetch_sdist

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
#: The largest edited file scored (4 times the largest target, in UTF-8's widest case); a larger one scores 0.
MAX_EDITED_BYTES = 128 << 10
#: Links followed (in the harness's head, never on disk) to tell where a link planted in the tree leads.
MAX_LINK_HOPS = 40


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
    key = {
        "generator": GENERATOR,
        "pairs": pairs,
        "lines": LINES,
        "max_chars": MAX_CHARS,
        "changes": CHANGES,
        "max_share": MAX_SHARE,
    }
    rows = cached_rows(context, NAME, key, lambda: [dataclasses.asdict(task) for task in generate(context, pairs)])
    return [EditTask(**row) for row in rows]


def generate(context: BenchmarkContext, pairs: tuple[tuple[str, str, str], ...]) -> list[EditTask]:
    """Every qualifying file of every pair (by path within a pair), the pairs interleaved."""
    groups = []
    for package, old, new in pairs:
        old_tree, new_tree = fetch_sdist(f"{package}=={old}", context), fetch_sdist(f"{package}=={new}", context)
        context.on_progress(f"comparing {package} {old} → {new}")
        groups.append(
            [
                EditTask(f"{NAME}/{package}-{old}-{new}/{path}", package, old, new, path, original, target)
                for path, original, target in _changed_files(old_tree, new_tree)
            ]
        )
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

    def scorer_input(final_tree: Path, answer: str | None) -> dict[str, str] | Score:
        edited = read_edited(final_tree, task.path)
        if isinstance(edited, Score):
            return edited
        return {"path": task.path, "original": task.original, "target": task.target, "final": edited}

    return script_problem(
        task.id, NAME, statement(task), lay_out, edit_score, scorer_input, (task.original, task.target)
    )


def read_edited(tree: Path, relative: str) -> str | Score:
    """The text of the edited file `relative` (undecodable bytes replaced), or the score it gets unread: 0 with
    the reason when it is missing, not a regular file, too large or reached through a link within the tree; a
    tampering score when a link on its way leads out of the tree. Opens one component at a time from `tree`,
    never following a link, never blocking on a FIFO, never reading past MAX_EDITED_BYTES; never raises for
    what the agent left (an unreadable folder is its doing too)."""
    parts = PurePosixPath(relative).parts
    try:
        opened = os.open(tree, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        return Score(0.0, f"{relative}: the working directory cannot be opened ({os.strerror(error.errno or 0)})")
    try:
        for depth, name in enumerate(parts):
            last = depth == len(parts) - 1
            try:
                mode = os.stat(name, dir_fd=opened, follow_symlinks=False).st_mode
            except FileNotFoundError:
                return Score(0.0, f"{relative}: the file is missing")
            if stat.S_ISLNK(mode):
                return _link_score(tree, parts[: depth + 1], relative)
            if not last and not stat.S_ISDIR(mode):
                return Score(0.0, f"{relative}: {'/'.join(parts[: depth + 1])} is {_kind(mode)}, not a folder")
            if last and not stat.S_ISREG(mode):
                return Score(0.0, f"{relative}: {_kind(mode)}, not a regular file")
            kind = os.O_NONBLOCK | os.O_NOCTTY if last else os.O_DIRECTORY
            inner = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | kind, dir_fd=opened)
            os.close(opened)
            opened = inner
        found = os.fstat(opened)
        if not stat.S_ISREG(found.st_mode):
            return Score(0.0, f"{relative}: {_kind(found.st_mode)}, not a regular file")
        too_large = Score(
            0.0,
            f"{relative}: larger than the {MAX_EDITED_BYTES} bytes scored (the target is at "
            f"most {MAX_CHARS} characters)",
        )
        if found.st_size > MAX_EDITED_BYTES:
            return too_large  # a sparse file of gigabytes is not even read
        data = os.pread(opened, MAX_EDITED_BYTES + 1, 0)
        return too_large if len(data) > MAX_EDITED_BYTES else data.decode("utf-8", errors="replace")
    except OSError as error:
        return Score(0.0, f"{relative}: cannot be read ({os.strerror(error.errno or 0)})")
    finally:
        os.close(opened)


def _kind(mode: int) -> str:
    """What a file of `mode` is, in words."""
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((words for test, words in kinds if test(mode)), "a special file")


#: Where a link to an absolute path is said to lead, by its first component (others: "an absolute path").
_NAMED_TOPS = ("proc", "dev", "sys", "etc", "tmp", "run", "home", "root", "usr", "var")


def _link_score(tree: Path, link: tuple[str, ...], relative: str) -> Score:
    """The score of an edited file whose way holds the link `link` (its components from the tree): tampering
    when it leads out of the tree, else 0 (a link within the tree is not the file, and it is never read)."""
    where = "/".join(link)
    what = f"{relative} is a link" if where == relative else f"{relative}: its folder {where} is a link"
    try:
        leads = _leads_out(tree, link)
    except OSError as error:
        return Score(0.0, f"{what} that cannot be read ({os.strerror(error.errno or 0)})")
    if leads is None:
        return Score(0.0, f"{what} within the working directory, not a {'file' if where == relative else 'folder'}")
    return Score.tampering(f"{what} out of the working directory, {leads}")


def _leads_out(tree: Path, link: tuple[str, ...]) -> str | None:
    """Where the path `link` (components from the tree) leads when it leaves the tree ("to /proc", "to an
    absolute path", "above the tree"), None when it stays inside (a loop of links too). Links on its way are
    followed in the harness's head only: their text is read, nothing they name is opened, and every component
    kept on the way was checked not to be a link, so no look-up follows one."""
    place: list[str] = []
    pending = list(link)
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not place:
                return "above the tree"
            place.pop()
            continue
        here = tree.joinpath(*place, part)
        try:
            is_link = stat.S_ISLNK(os.lstat(here).st_mode)
        except OSError:
            is_link = False
        if not is_link:
            place.append(part)
            continue
        hops += 1
        if hops > MAX_LINK_HOPS:
            return None
        text = os.readlink(here)
        if text.startswith("/"):
            top = text.lstrip("/").split("/")[0]
            return f"to /{top}" if top in _NAMED_TOPS else "to an absolute path"
        pending = text.split("/") + pending
    return None


def statement(task: EditTask) -> str:
    """What the agent is asked: the path, the releases, and the target in a fence longer than any backquote run
    in it (whether it ends with a newline is said in words: a fence cannot show it)."""
    fence = "`" * max([3, *(len(run) + 1 for run in re.findall("`+", task.target))])
    body = task.target.removesuffix("\n")
    ending = "ends with a newline" if task.target.endswith("\n") else "does not end with a newline"
    return (
        f"Edit `{task.path}` so that its content becomes exactly the target below: the file as released in "
        f"{task.package} {task.new} (it now holds the {task.old} version). Use your file-editing tools and "
        "change nothing else. The result must match the target character for character, indentation, blank "
        f"lines and trailing spaces included; the target {ending}.\n\n"
        f"Target content of `{task.path}`:\n\n{fence}python\n{body}\n{fence}\n"
    )


def open_file_editing(context: BenchmarkContext, count: int | None) -> list[Problem]:
    """Every problem (the set is generated whole, once, so `count` changes nothing)."""
    return [problem(task) for task in edit_tasks(context, PAIRS)]
