"""Realistic one-spot bugs for a Python source, found with `ast` and applied as minimal text edits at the exact
source position (the rest of the file, its formatting and comments, stays as it was). Four kinds:

- `comparison`: a comparison flipped (`<` ↔ `<=`, `>` ↔ `>=`, `==` ↔ `!=`);
- `off-by-one`: a `+ 1`/`- 1` dropped, or a `range` stop or slice bound moved by one;
- `dropped-branch`: a guarding `if` statement (one without `else`) or an `elif` clause removed;
- `wrong-default`: a default argument changed (an int by one, a bool flipped).

Only code inside functions is mutated; each mutation names the function and the line the tests must run for
it to matter."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

_FLIPS: dict[type[ast.cmpop], tuple[str, str]] = {
    ast.Lt: ("<", "<="),
    ast.LtE: ("<=", "<"),
    ast.Gt: (">", ">="),
    ast.GtE: (">=", ">"),
    ast.Eq: ("==", "!="),
    ast.NotEq: ("!=", "=="),
}
_COMPARISON = re.compile(r"<=|>=|==|!=|<|>")
#: Expressions a `+ 1` can follow without parentheses.
_ATOMS = (ast.Name, ast.Attribute, ast.Call, ast.Subscript)


@dataclass(frozen=True)
class Mutation:
    """Replace `source[start:end]` (character offsets) by `replacement`. `line` is the line the tests must run
    for the bug to show; `function` the qualified name of the function it is in."""

    operator: str
    function: str
    line: int
    start: int
    end: int
    replacement: str

    def apply(self, source: str) -> str:
        return source[: self.start] + self.replacement + source[self.end :]


def find_mutations(source: str) -> list[Mutation]:
    """Every mutation of `source` that still parses, in source order."""
    finder = _Finder(source)
    finder.visit(ast.parse(source))
    # The same edit can be found twice (an `elif` chain is visited from each `if` of it): keep one.
    unique = {(m.start, m.end, m.replacement): m for m in finder.found}
    found = sorted(unique.values(), key=lambda m: (m.start, m.end, m.operator, m.replacement))
    return [m for m in found if _parses(m.apply(source))]


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except SyntaxError:
        return False
    return True


class _Finder(ast.NodeVisitor):
    def __init__(self, source: str) -> None:
        self.source = source
        # Lines as `ast` counts them: split at "\n" only (str.splitlines also splits at form feeds and others).
        self.lines = re.split(r"(?<=\n)", source)
        self.line_starts = [0]
        for line in self.lines:
            self.line_starts.append(self.line_starts[-1] + len(line))
        self.scope: list[str] = []
        self.depth = 0  # functions we are in
        self.found: list[Mutation] = []

    def offset(self, line: int, column: int) -> int:
        """The character offset of `ast`'s (line, UTF-8 byte column)."""
        text = self.lines[line - 1].encode()[:column].decode()
        return self.line_starts[line - 1] + len(text)

    def start(self, node: ast.AST) -> int:
        return self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> int:
        return self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]

    def add(self, operator: str, line: int, start: int, end: int, replacement: str) -> None:
        if self.depth:
            self.found.append(Mutation(operator, ".".join(self.scope), line, start, end, replacement))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.depth += 1
        self._defaults(node)
        self._statements(node.body)
        self.generic_visit(node)
        self.depth -= 1
        self.scope.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def _defaults(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        body = node.body[1:] if _is_docstring(node.body[0]) else node.body
        if not body:
            return
        for default in [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]:
            if not isinstance(default, ast.Constant):
                continue
            value = default.value
            if isinstance(value, bool):
                self.add("wrong-default", body[0].lineno, self.start(default), self.end(default), str(not value))
            elif isinstance(value, int) and value >= 0:
                self.add("wrong-default", body[0].lineno, self.start(default), self.end(default), str(value + 1))

    def visit_Compare(self, node: ast.Compare) -> None:
        operands = [node.left, *node.comparators]
        for index, op in enumerate(node.ops):
            if type(op) not in _FLIPS:
                continue
            symbol, flipped = _FLIPS[type(op)]
            between_start, between_end = self.end(operands[index]), self.start(operands[index + 1])
            matches = list(_COMPARISON.finditer(self.source, between_start, between_end))
            if len(matches) == 1 and matches[0].group() == symbol:
                self.add("comparison", node.lineno, matches[0].start(), matches[0].end(), flipped)
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        one = isinstance(node.right, ast.Constant) and node.right.value == 1 and type(node.right.value) is int
        if one and isinstance(node.op, (ast.Add, ast.Sub)):
            self.add("off-by-one", node.lineno, self.end(node.left), self.end(node), "")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id == "range" and len(node.args) in (1, 2):
            self._plus_one(node.args[-1], node.lineno)
        self.generic_visit(node)

    def visit_Slice(self, node: ast.Slice) -> None:
        for bound in (node.lower, node.upper):
            if bound is not None:
                self._plus_one(bound, bound.lineno)
        self.generic_visit(node)

    def _plus_one(self, bound: ast.expr, line: int) -> None:
        if isinstance(bound, _ATOMS):
            self.add("off-by-one", line, self.end(bound), self.end(bound), " + 1")

    def _statements(self, body: list[ast.stmt]) -> None:
        """Dropped branches among a function's statements (nested blocks included, nested functions not)."""
        for statement in body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if isinstance(statement, ast.If):
                self._dropped_branches(statement, sole=len(body) == 1)
            for field in ("body", "orelse", "finalbody"):
                self._statements(getattr(statement, field, []))
            for handler in getattr(statement, "handlers", []):
                self._statements(handler.body)
            for case in getattr(statement, "cases", []):
                self._statements(case.body)

    def _dropped_branches(self, statement: ast.If, sole: bool) -> None:
        """The whole `if` when it has no `else` (and is not the only statement of its block); each `elif`."""
        if not statement.orelse and not sole:
            self._drop_lines(statement, statement)
        clause = statement
        while len(clause.orelse) == 1 and isinstance(clause.orelse[0], ast.If):
            branch = clause.orelse[0]
            header = self.lines[branch.lineno - 1]
            if not header[_character(header, branch.col_offset) :].startswith("elif"):
                break  # an `else:` holding an `if`, not an `elif`
            self._drop_lines(branch, branch.body[-1])
            clause = branch

    def _drop_lines(self, first: ast.stmt, last: ast.stmt) -> None:
        """A dropped-branch deleting the lines from `first`'s to `last`'s end, when they hold only this code."""
        if self._whole_lines(first.lineno, first.col_offset, last):
            end = self.line_starts[last.end_lineno or last.lineno]
            self.add("dropped-branch", first.lineno, self.line_starts[first.lineno - 1], end, "")

    def _whole_lines(self, first_line: int, column: int, last: ast.AST) -> bool:
        """Whether lines `first_line`..`last`'s end hold only this code: nothing before `column` but indentation,
        nothing after `last` but a comment."""
        head = self.lines[first_line - 1].encode()[:column].decode()
        tail = self.lines[last.end_lineno - 1].encode()[last.end_col_offset :].decode()  # type: ignore[attr-defined]
        return not head.strip() and (not tail.strip() or tail.strip().startswith("#"))


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _character(line: str, byte_column: int) -> int:
    return len(line.encode()[:byte_column].decode())
