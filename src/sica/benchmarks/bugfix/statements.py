"""A problem's statement: an issue-style bug report from the failing tests alone (their names, the failing test line,
the error's first line), never quoting the code the bug changed."""

from __future__ import annotations

from sica.benchmarks.bugfix import Package

#: How many failing tests a statement describes in full.
SHOWN_FAILURES = 5


def changed_lines(patch: str) -> set[str]:
    """The code lines a patch removes or adds (stripped): what a statement must never quote. A line with fewer
    than two letters or digits (a lone bracket, `'1'`) tells nothing of the change and would hide every detail."""
    return {
        line[1:].strip()
        for line in patch.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---")) and sum(map(str.isalnum, line[1:])) >= 2
    }


def bug_report(package: Package, failing: list[str], failures: dict[str, dict[str, str]], never_quote: set[str]) -> str:
    """An issue-style statement from the failing tests alone; a test whose details would quote `never_quote`
    code is named without them."""
    count, fail = (f"{len(failing)} tests", "fail") if len(failing) > 1 else ("1 test", "fails")
    lines = [
        f"# {package.name} {package.version}: {count} of its own test suite {fail}",
        "",
        f"In this checkout of {package.name}, {count} that should pass {fail}:",
        "",
    ]
    for test in failing[:SHOWN_FAILURES]:
        detail = failures.get(test, {})
        quoted = [text for text in (detail.get("line", ""), detail.get("message", "")) if text]
        if any(code in text for code in never_quote for text in quoted):
            quoted = []
        lines += [f"- `{test}`", *(f"      {text}" for text in quoted)]
    if len(failing) > SHOWN_FAILURES:
        lines.append(f"- and {len(failing) - SHOWN_FAILURES} more")
    path = " (with `src` on PYTHONPATH)" if package.source == "src" else ""
    lines += [
        "",
        "Find the bug in the package's code and fix it: these tests must pass and the rest of the suite "
        "must keep passing. The test files holding these tests are not in your tree; they are put back, "
        "unchanged, with every other test file when your fix is checked, so change the code, not the tests. "
        "pytest and the package's test dependencies are on PATH; the package itself is not installed: its "
        f"source is this tree, and `python -m pytest` run from the tree's root{path} imports it from there.",
    ]
    return "\n".join(lines) + "\n"
