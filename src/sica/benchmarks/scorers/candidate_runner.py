"""The code under test's side of a function check: `python3 -I -B candidate_runner.py MODE TREE`, started by
`function_checker.py` in its own process. It runs in the candidate's process, so nothing it says is trusted: the
checker decodes its answers as plain data and decides every verdict itself.

`function`: load `TREE/solution.py` as the module `solution` (TREE first on sys.path, so it can import its
siblings; a prelude the checker sends runs first in its namespace), then answer one call at a time: a request
line on standard input, a reply line on the original standard output. What the solution prints goes to standard
error, and its standard input is empty, so neither disturbs the calls.

`program`: run `TREE/solution.py` as `__main__`, as `python3 solution.py` would (TREE first on sys.path).
Standard library only (it runs on the sandbox's system Python 3.11)."""

from __future__ import annotations

import os
import runpy
import sys
import types
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))


def run_program(tree: str) -> None:
    path = os.path.join(tree, "solution.py")
    sys.path[:] = [tree, *(entry for entry in sys.path if entry != HERE)]
    sys.argv = [path]
    runpy.run_path(path, run_name="__main__")


def serve(tree: str) -> None:
    sys.path.insert(0, HERE)
    import plain_data  # type: ignore[import-not-found]  # beside this script, loaded before the tree joins the path

    requests, replies = os.fdopen(os.dup(0), "rb"), os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    sys.stdin, sys.stdout = open(os.devnull), sys.stderr

    def reply(message: dict[str, Any]) -> None:
        replies.write(plain_data.dumps(message))
        replies.flush()

    load = plain_data.loads(requests.readline()).get("load", {})
    try:
        target = _load(tree, str(load["name"]), str(load.get("prelude") or ""), load.get("method_of"))
    except BaseException as error:  # the solution's own failure, reported as data
        reply({"load_failed": f"raised {type(error).__name__}"})
        return
    if target is None:
        reply({"load_failed": f"defines no {load['name']}"})
        return
    reply({"ready": True})
    for line in requests:
        request = plain_data.loads(line)
        number = request["call"]
        try:
            arguments = [plain_data.decode(item) for item in request["args"]]
            keywords = {str(name): plain_data.decode(value) for name, value in request["kwargs"]}
            result = target()(*arguments, **keywords)
        except BaseException as error:  # anything the solution raises is a failed call, never an exit
            reply({"call": number, "raised": type(error).__name__})
            continue
        try:
            encoded = plain_data.encode(result)
        except BaseException:
            reply({"call": number, "unencodable": type(result).__name__})
            continue
        reply({"call": number, "returned": encoded})


def _load(tree: str, name: str, prelude: str, method_of: Any) -> Callable[[], Callable[..., Any]] | None:
    """What to call for each request: the module's function, or the method of a fresh instance of its class
    `method_of` when it defines one (LeetCode's `Solution`); None when it has neither."""
    path = os.path.join(tree, "solution.py")
    module = types.ModuleType("solution")
    module.__file__ = path
    sys.modules["solution"] = module
    sys.path.insert(0, tree)
    exec(compile(prelude, "<prelude>", "exec"), module.__dict__)
    with open(path, encoding="utf-8") as source:
        exec(compile(source.read(), path, "exec"), module.__dict__)
    holder = module.__dict__.get(method_of) if isinstance(method_of, str) else None
    if isinstance(holder, type):
        return lambda: getattr(holder(), name)
    if not callable(module.__dict__.get(name)):
        return None
    return lambda: module.__dict__[name]


if __name__ == "__main__":
    if sys.argv[1] == "program":
        run_program(sys.argv[2])
    else:
        serve(sys.argv[2])
