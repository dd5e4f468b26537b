"""`symbol_location`'s scorer: `python3 score.py TREE`, given on standard input a JSON object with `expected`
(`PATH:LINE:COL`) and `answer` (the agent's answer as the harness read it, or null). Neither is in a file, and
TREE is empty: the scorer reads nothing the agent could have planted a link in.

Reading the answer: the first `PATH:LINE:COL` in it counts, PATH ending in `.py` (so whitespace, quotes or
backquotes and a sentence around it do no harm); a leading `./`, or the working directory's own path (TREE,
where the agent worked too), is dropped from PATH; a missing `:COL` just makes the column wrong. PATH is read
to at most MAX_PATH characters and LINE and COL to 9 digits (a longer number is none), so that a hostile answer
costs the search linear time, never a backtracking blow-up or a number too long to convert.
Scoring: 1.0 for the exact place; otherwise 0.4 for the right path and, only with it, 0.4 for the right line and
0.2 for the right column on that line (a column alone says nothing: every top-level `def` name is at column 5)."""

from __future__ import annotations

import json
import re
import sys

MAX_PATH = 400
_PLACE = re.compile(
    rf"(?P<path>[^\s:'\"`()\[\]{{}}<>,;]{{1,{MAX_PATH - 3}}}\.py)"
    + r":(?P<line>\d{1,9})(?!\d)(?::(?P<col>\d{1,9})(?!\d))?"
)


def parse_answer(answer: str, tree: str) -> tuple[str, int, int | None] | None:
    """(path, line, column or None) from the first `PATH:LINE[:COL]` in `answer`, or None if there is none."""
    found = _PLACE.search(answer)
    if found is None:
        return None
    path = found.group("path")
    prefix = tree.rstrip("/") + "/"
    if path.startswith(prefix):
        path = path[len(prefix) :]
    while path.startswith("./"):
        path = path[2:]
    return path, int(found.group("line")), int(found.group("col")) if found.group("col") else None


def location_score(expected: str, answer: str | None, tree: str) -> tuple[float, str]:
    """The score of `answer` against `expected` (`PATH:LINE:COL`) and a line saying how it was reached."""
    path, line, col = expected.strip().rsplit(":", 2)
    given = parse_answer(answer, tree) if answer else None
    if given is None:
        return 0.0, "no PATH:LINE:COL in the answer" if answer else "no answer"
    shown = "".join(
        char if char.isprintable() else "?"
        for char in f"{given[0]}:{given[1]}" + (f":{given[2]}" if given[2] is not None else "")
    )
    if given[0] != path:
        return 0.0, f"answered {shown}: wrong file"
    if given[1] != int(line):
        return 0.4, f"answered {shown}: right file, wrong line"
    if given[2] != int(col):
        return 0.8, f"answered {shown}: right file and line, wrong column"
    return 1.0, f"answered {shown}: exact"


def main(argv: list[str]) -> int:
    given = json.loads(sys.stdin.buffer.read())
    value, details = location_score(given["expected"], given["answer"], argv[1])
    print(details)
    print(f"score: {value:.4f}")
    return 0 if value == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
