"""Task folders for `sica eval` and `sica improve` (scripted and local-model tests), the scripted solution of the
scripted ones, and the results an evaluation wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: A solution of every `make_tasks` task whose word is "ok", in two steps. Every problem replays it from the start
#: (the scripted upstream keeps a position per account).
SOLVE_SCRIPT = [
    {"tool_calls": [{"name": "create", "arguments": {"path": "done.txt", "content": "ok\n"}}],
     "usage": {"input": 1000, "output": 20}},
    {"tool_calls": [{"name": "complete", "arguments": {"summary": "wrote done.txt"}}],
     "usage": {"input": 1100, "output": 10}},
]

#: Problems a small real model can solve, name → (statement, starting files, check.sh).
EASY = {
    "write-ok": ("Create a file named done.txt containing just the word ok.", {},
                 'test "$(tr -d "[:space:]" < "$1/done.txt")" = ok'),
    "fix-typo": ("In greet.py, greet('Ada') should return 'Hello, Ada' but it returns 'Helo, Ada'. Fix it.",
                 {"greet.py": "def greet(name):\n    return 'Helo, ' + name\n"},
                 'cd "$1" && python3 -c "from greet import greet; assert greet(\'Ada\') == \'Hello, Ada\'"'),
    "add-function": ("Add a function add(a, b) returning a + b to calc.py.", {"calc.py": ""},
                     'cd "$1" && python3 -c "from calc import add; assert add(2, 3) == 5"'),
}


def make_tasks(root: Path, expected: dict[str, str]) -> Path:
    """Task folders whose check passes iff done.txt holds the expected word."""
    for name, word in expected.items():
        task = root / name
        task.mkdir(parents=True)
        (task / "task.md").write_text(f"Write the word '{word}' into done.txt.\n")
        (task / "build.sh").write_text("mkdir -p \"$1\" && echo start > \"$1/README\"\n")
        (task / "check.sh").write_text(f'test "$(cat "$1/done.txt" 2>/dev/null)" = "{word}"\n')
    return root


def write_easy_tasks(root: Path, names: list[str]) -> None:
    """These EASY problems as task folders under `root`."""
    for name in names:
        statement, files, check = EASY[name]
        task = root / name
        (task / "files").mkdir(parents=True)
        (task / "task.md").write_text(statement + "\n")
        for file, text in files.items():
            (task / "files" / file).write_text(text)
        (task / "build.sh").write_text('cp -r files/. "$1"\n')
        (task / "check.sh").write_text(check + "\n")


def results_of(home: Path) -> list[dict[str, Any]]:
    """The results of the latest evaluation under `home/evals` (its results.jsonl, one result a line)."""
    (jsonl,) = sorted((home / "evals").glob("*/results.jsonl"), key=lambda p: p.stat().st_mtime)[-1:]
    return [json.loads(line) for line in jsonl.read_text().splitlines()]
