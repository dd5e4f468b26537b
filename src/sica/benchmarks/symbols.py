"""Where a name used in a source tree is defined, resolved exactly from the syntax trees alone (nothing is
imported or run). Used by `symbol_location` to generate problems whose answer is certain.

A usage is a name read (`groupby`) or a module's attribute (`itertoolz.groupby`, `module` bound by an import of
a module of the tree); it resolves when it leads, through `from … import …` and `import … as …` of modules in
the tree (relative or absolute) and `from … import *` (through literal `__all__` lists or public names), to one
`def` or `class` statement. Conservatively, a name resolves only if the module binds it once in all its scopes
(any second binding, an assignment or a parameter of the same name, anywhere in the module, makes it ambiguous)
and no star import could rebind it; anything unsure is skipped, never guessed.

Places are `path:line:col`: the path relative to the tree root, the line 1-based, the column 1-based and counted
in characters (a tab is one); a definition's place is that of its name in the `def`/`class` statement.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Import hops followed from a usage to its definition before giving up (a cycle ends here too).
MAX_HOPS = 8
_DEFINITION = re.compile(r"(?:async\s+)?def\s+(\w+)|class\s+(\w+)")


@dataclass(frozen=True, order=True)
class Place:
    """A position in the tree: path relative to the root, 1-based line, 1-based column in characters."""

    path: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Usage:
    """A resolved usage: `symbol` as written at `place`, defined at `definition`, `hops` imports away (0: the
    same module)."""

    symbol: str
    place: Place
    definition: Place
    hops: int


@dataclass(frozen=True)
class _Binding:
    """One binding of a name, by `kind`: "definition" (a `def`/`class`, its name at `place`), "import" (of the
    module `module`), "from" (`name` imported from `module`) or "other" (an assignment, a parameter…). `scope`
    is the chain of enclosing scopes (functions, classes, lambdas, comprehensions; empty: module level)."""

    kind: str
    scope: tuple[ast.AST, ...]
    place: Place | None = None
    module: str | None = None
    name: str | None = None


@dataclass
class _Module:
    """One module: its dotted `name`, `path` in the tree, `package` (for relative imports), source `lines`,
    every binding by name, its star imports (of modules of the tree, or `foreign_star` for others), its literal
    `__all__` (`exported`; `exported_unknown` when it is computed) and the reads to resolve, with their scopes."""

    name: str
    path: str
    package: str
    lines: list[str]
    bindings: dict[str, list[_Binding]] = field(default_factory=dict)
    star_sources: list[str] = field(default_factory=list)
    foreign_star: bool = False
    exported: set[str] | None = None
    exported_unknown: bool = False
    reads: list[tuple[ast.AST, tuple[ast.AST, ...]]] = field(default_factory=list)


class SourceIndex:
    """The Python modules of a tree (`src/` layouts included), indexed for resolving usages."""

    def __init__(self, root: Path) -> None:
        parsed: dict[str, tuple[_Module, ast.Module]] = {}
        for file in python_files(root):
            relative = file.relative_to(root)
            try:
                source = file.read_text(encoding="utf-8")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the package's own invalid escapes and the like
                    tree = ast.parse(source)
            except (UnicodeDecodeError, SyntaxError, ValueError):
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[0] == "src" and len(parts) > 1:
                parts = parts[1:]
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            if not parts or "\r" in source:
                continue
            name = ".".join(parts)
            package = name if is_package else ".".join(parts[:-1])
            parsed[name] = (_Module(name, relative.as_posix(), package, source.split("\n")), tree)
        self.modules = {name: module for name, (module, _) in parsed.items()}
        for module, tree in parsed.values():
            _Collector(module, set(self.modules)).visit(tree)

    def usages(self) -> list[Usage]:
        """Every usage that resolves, in module and position order."""
        found: list[Usage] = []
        for module in self.modules.values():
            for node, scope in module.reads:
                usage = self._usage(module, node, scope)
                if usage is not None:
                    found.append(usage)
        return sorted(found, key=lambda usage: usage.place)

    def _usage(self, module: _Module, node: ast.AST, scope: tuple[ast.AST, ...]) -> Usage | None:
        if isinstance(node, ast.Name):
            resolved = self._resolve(module, node.id, scope, 0)
            place = _place(module, node.lineno, node.col_offset)
            symbol = node.id
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.end_lineno is not None:
            target = self._module_bound(module, node.value.id, scope)
            if target is None:
                return None
            resolved = self._resolve(self.modules[target], node.attr, (), 1)
            end = node.end_col_offset if node.end_col_offset is not None else 0
            place = _place(module, node.end_lineno, end - len(node.attr.encode("utf-8")))
            symbol = f"{node.value.id}.{node.attr}"
        else:
            return None
        if resolved is None or place is None or resolved[0] == place:
            return None
        return Usage(symbol, place, resolved[0], resolved[1])

    def _visible(self, module: _Module, name: str, scope: tuple[ast.AST, ...]) -> _Binding | None:
        """The one binding of `name` in `module` that a read in `scope` sees, when it is certain."""
        bindings = module.bindings.get(name, [])
        if (
            len(bindings) != 1
            or module.foreign_star
            or any(self._exports(source, name, 0) for source in module.star_sources)
        ):
            return None
        binding = bindings[0]
        outer = binding.scope
        if scope[: len(outer)] != outer or (outer and isinstance(outer[-1], ast.ClassDef) and scope != outer):
            return None
        return binding

    def _resolve(self, module: _Module, name: str, scope: tuple[ast.AST, ...], hops: int) -> tuple[Place, int] | None:
        """The definition `name` read in `scope` of `module` leads to, and the import hops on the way."""
        if hops > MAX_HOPS or (hops and f"{module.name}.{name}" in self.modules):
            return None  # an attribute of a package that is also its submodule: which one wins depends on order
        if name not in module.bindings:
            if module.foreign_star:
                return None
            sources = [source for source in module.star_sources if self._exports(source, name, 0)]
            return self._resolve(self.modules[sources[0]], name, (), hops + 1) if len(sources) == 1 else None
        binding = self._visible(module, name, scope)
        if binding is None:
            return None
        if binding.place is not None:
            return binding.place, hops
        if binding.kind == "from" and binding.module in self.modules and binding.name is not None:
            return self._resolve(self.modules[binding.module], binding.name, (), hops + 1)
        return None

    def _module_bound(self, module: _Module, name: str, scope: tuple[ast.AST, ...]) -> str | None:
        """The module of the tree that `name` certainly stands for in `scope` of `module`, if any."""
        binding = self._visible(module, name, scope)
        if binding is None:
            return None
        if binding.kind == "import":
            return binding.module if binding.module in self.modules else None
        if binding.kind == "from" and binding.module in self.modules and binding.name is not None:
            submodule = f"{binding.module}.{binding.name}"
            source = self.modules[binding.module]
            if submodule in self.modules and binding.name not in source.bindings and not source.star_sources:
                return submodule
        return None

    def _exports(self, module_name: str, symbol: str, depth: int) -> bool:
        """Whether `from module_name import *` may bind `symbol` (True when unsure)."""
        module = self.modules[module_name]
        if module.exported_unknown or depth > MAX_HOPS:
            return True
        if module.exported is not None:
            return symbol in module.exported
        if symbol.startswith("_"):
            return False
        return (
            any(not binding.scope for binding in module.bindings.get(symbol, []))
            or module.foreign_star
            or any(self._exports(source, symbol, depth + 1) for source in module.star_sources)
        )


class _Collector(ast.NodeVisitor):
    """Records a module's bindings (with their scopes), star imports, `__all__` and the reads to resolve."""

    def __init__(self, module: _Module, known: set[str]) -> None:
        self.module = module
        self.known = known
        self.scope: tuple[ast.AST, ...] = ()

    def bind(self, name: str, binding: _Binding) -> None:
        self.module.bindings.setdefault(name, []).append(binding)

    def other(self, name: str) -> None:
        self.bind(name, _Binding("other", self.scope))

    def enter(self, node: ast.AST, parameters: list[str], children: Sequence[ast.AST]) -> None:
        """Visit `children` in the scope `node` opens, where `parameters` are bound."""
        outer, self.scope = self.scope, (*self.scope, node)
        for name in parameters:
            self.other(name)
        for child in children:
            self.visit(child)
        self.scope = outer

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        for child in [*node.decorator_list, *_outer_parts(node)]:
            self.visit(child)
        place = _definition_place(self.module, node)
        self.bind(node.name, _Binding("definition" if place else "other", self.scope, place=place))
        self.enter(node, [] if isinstance(node, ast.ClassDef) else _parameters(node.args), node.body)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for default in [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]:
            self.visit(default)
        self.enter(node, _parameters(node.args), [node.body])

    def visit_comprehension_scope(self, node: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp) -> None:
        self.enter(node, [], list(ast.iter_child_nodes(node)))

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_comprehension_scope

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.module.reads.append((node, self.scope))
        else:
            self.other(node.id)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load):
            self.module.reads.append((node, self.scope))
        if isinstance(node.value, ast.Name) and node.value.id == "__all__":
            self.module.exported_unknown = True  # __all__.extend(…) and the like
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.bind(alias.asname, _Binding("import", self.scope, module=alias.name))
            else:
                top = alias.name.split(".")[0]
                self.bind(top, _Binding("import", self.scope, module=top))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self.absolute(node)
        for alias in node.names:
            if alias.name == "*":
                if base is not None and base in self.known:
                    self.module.star_sources.append(base)
                else:
                    self.module.foreign_star = True
            else:
                self.bind(alias.asname or alias.name, _Binding("from", self.scope, module=base, name=alias.name))

    def absolute(self, node: ast.ImportFrom) -> str | None:
        """The module an import names, relative imports resolved against this module's package."""
        if not node.level:
            return node.module
        parts = self.module.package.split(".") if self.module.package else []
        if node.level - 1 > len(parts) or (node.level - 1 == len(parts) and not node.module):
            return None
        parts = parts[: len(parts) - (node.level - 1)]
        return ".".join([*parts, *([node.module] if node.module else [])]) or None

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.other(node.name)
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global | ast.Nonlocal) -> None:
        for name in node.names:
            self.other(name)

    visit_Nonlocal = visit_Global

    def visit_MatchAs(self, node: ast.MatchAs | ast.MatchStar) -> None:
        if node.name:
            self.other(node.name)
        self.generic_visit(node)

    visit_MatchStar = visit_MatchAs

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self.other(node.rest)
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        if not self.scope and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            names = _literal_names(node.value)
            if names is None or self.module.exported is not None:
                self.module.exported_unknown = True
            else:
                self.module.exported = names
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name) and node.target.id == "__all__":
            self.module.exported_unknown = True
        self.generic_visit(node)


def python_files(root: Path) -> list[Path]:
    """The Python files of a tree (regular files, not links), sorted."""
    return sorted(file for file in root.rglob("*.py") if file.is_file() and not file.is_symlink())


def _outer_parts(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> list[ast.AST]:
    """What a `def`/`class` evaluates in its enclosing scope: defaults, annotations, bases, keywords."""
    if isinstance(node, ast.ClassDef):
        return [*node.bases, *node.keywords]
    arguments = node.args
    annotations = [
        a.annotation
        for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg)
        if a is not None and a.annotation
    ]
    return [
        *arguments.defaults,
        *(d for d in arguments.kw_defaults if d is not None),
        *annotations,
        *([node.returns] if node.returns else []),
    ]


def _parameters(arguments: ast.arguments) -> list[str]:
    """The names a `def` or `lambda` binds in its own scope."""
    return [
        a.arg
        for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg)
        if a is not None
    ]


def _literal_names(value: ast.AST) -> set[str] | None:
    if isinstance(value, (ast.List, ast.Tuple)) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts
    ):
        return {e.value for e in value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return None


def _place(module: _Module, line: int, byte_col: int) -> Place | None:
    """The place of a byte offset on a line (the parser counts UTF-8 bytes; places count characters)."""
    if not 1 <= line <= len(module.lines):
        return None
    text = module.lines[line - 1].encode("utf-8")
    return Place(module.path, line, len(text[:byte_col].decode("utf-8", errors="replace")) + 1)


def _definition_place(module: _Module, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> Place | None:
    """The place of the name in a `def`/`class` statement (None if it is not on the statement's first line)."""
    start = _place(module, node.lineno, node.col_offset)
    if start is None:
        return None
    found = _DEFINITION.match(module.lines[node.lineno - 1], start.col - 1)
    if found is None or (found.group(1) or found.group(2)) != node.name:
        return None
    return Place(module.path, node.lineno, found.start(1 if found.group(1) else 2) + 1)
