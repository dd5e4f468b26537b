"""The test tiers, marked at collection from what each test uses, so no test is marked by hand: `slow` (it needs
the real local model: everything under tests/integration) and `sandbox` (it runs something in the real sandbox,
itself or through a `sica` process). `make test-fast` leaves both out.

What a test uses is read from its code: the names and strings of the test function, of the fixtures it asks for
and of the test-suite helpers they call (followed through their globals, transitively). It over-marks rather than
under-marks: a name that only looks like an entry point still marks the test.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from types import CodeType
from typing import Any

#: Fixtures that are (or open) the real sandbox.
SANDBOX_FIXTURES = frozenset({"sandbox", "world"})
#: What runs an agent or a scorer in the sandbox: harness entry points, the bugfix benchmark (it generates its
#: problems by running a package's tests there) and tests/support/hostile.py's `sica eval`.
SANDBOX_CALLS = frozenset({"open_sandbox", "run_attempt", "run_eval", "Evaluations", "improve", "validate_version",
                           "BugfixBenchmark", "eval_results"})
#: The `sica` commands that run something in the sandbox, when a test starts one as a process.
SANDBOX_COMMANDS = frozenset({"eval", "solve", "improve", "sandbox", "doctor"})
#: What starts a `sica` process: tests/support/cli.py's helper, or `python -m sica` spelled out.
SICA_HELPERS = frozenset({"run_sica"})
SICA_MODULE = frozenset({"-m", "sica"})


def _code_of(function: Callable[..., Any]) -> CodeType | None:
    code = getattr(inspect.unwrap(function), "__code__", None)
    return code if isinstance(code, CodeType) else None


def _names_and_strings(functions: Iterable[Callable[..., Any]]) -> tuple[set[str], set[str]]:
    """The global and attribute names, and the string constants, of `functions` and of the test-suite functions
    they reach through their globals."""
    names: set[str] = set()
    strings: set[str] = set()
    pending = list(functions)
    seen: set[int] = set()
    while pending:
        function = pending.pop()
        code = _code_of(function)
        if code is None or id(code) in seen:
            continue
        seen.add(id(code))
        codes = [code]
        while codes:
            current = codes.pop()
            names.update(current.co_names)
            for constant in current.co_consts:
                if isinstance(constant, CodeType):
                    codes.append(constant)
                elif isinstance(constant, str):
                    strings.add(constant)
            for name in current.co_names:
                helper = getattr(function, "__globals__", {}).get(name)
                if inspect.isfunction(helper) and helper.__module__.startswith("tests."):
                    pending.append(helper)
    return names, strings


def uses_sandbox(functions: Iterable[Callable[..., Any]], fixtures: Iterable[str]) -> bool:
    """Whether a test whose code is `functions` (itself and its fixtures') and asks for `fixtures` runs something
    in the real sandbox."""
    if SANDBOX_FIXTURES & set(fixtures):
        return True
    names, strings = _names_and_strings(functions)
    if SANDBOX_CALLS & names:
        return True
    starts_sica = bool(SICA_HELPERS & names) or SICA_MODULE <= strings
    return starts_sica and bool(SANDBOX_COMMANDS & strings)
