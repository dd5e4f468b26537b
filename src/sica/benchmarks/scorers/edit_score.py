"""`file_editing`'s scorer: `python3 score.py TREE`, given on standard input a JSON object with `path` (the
file's path in the tree), `original`, `target` and `final` (the edited file as the harness read it, never
through a link; `file_editing.read_edited` refuses anything else before a scorer runs). The tree it is given is
empty: the target is in no file that a link the agent planted could name.

A change is a line of the original that the edit removes, ("-", line), or a line of the result that it adds,
("+", line), lines with their line ends, as difflib's opcodes give them (autojunk off). The agent's changes
(original → final file) and the target's (original → target) are compared as multisets: with `a` changes made,
`t` target changes (t > 0) and `m` changes in both,

    precision P = m / a (0 when a = 0)      recall R = m / t      excess = a - m
    penalty = 0.3 * min(1, excess / t)      score = clamp(0.4 * P + 0.6 * R - penalty, 0, 1)

capped at 0.99 unless the file is exactly the target, which scores 1.0 (so 1.0 means solved; the same changes
in other places score 0.99). The untouched file scores 0, and so does a missing one."""

from __future__ import annotations

import difflib
import json
import sys
from collections import Counter

NOT_EXACT_CAP = 0.99


def changes(before: str, after: str) -> Counter[tuple[str, str]]:
    """The line changes that turn `before` into `after`, as a multiset of ("-" or "+", line)."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    found: Counter[tuple[str, str]] = Counter()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag != "equal":
            found.update(("-", line) for line in old[i1:i2])
            found.update(("+", line) for line in new[j1:j2])
    return found


def edit_score(original: str, target: str, final: str | None) -> tuple[float, str]:
    """The score of `final` (None: the file is gone) and a line saying how it was reached."""
    if final is None:
        return 0.0, "the file is missing"
    if final == target:
        return 1.0, "exact match"
    wanted, made = changes(original, target), changes(original, final)
    matched = sum((wanted & made).values())
    total_wanted, total_made = sum(wanted.values()), sum(made.values())
    precision = matched / total_made if total_made else 0.0
    recall = matched / total_wanted if total_wanted else 0.0
    excess = total_made - matched
    penalty = 0.3 * min(1.0, excess / total_wanted) if total_wanted else 0.0
    value = min(NOT_EXACT_CAP, max(0.0, 0.4 * precision + 0.6 * recall - penalty))
    return value, (
        f"not exact: {matched} of {total_wanted} target line changes made, {excess} other line changes; "
        f"precision {precision:.3f}, recall {recall:.3f}, penalty {penalty:.3f}"
    )


def main(argv: list[str]) -> int:
    given = json.loads(sys.stdin.buffer.read())
    value, details = edit_score(given["original"], given["target"], given["final"])
    print(f"{given['path']}: {details}")
    print(f"score: {value:.4f}")
    return 0 if value == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
