"""LiveCodeBench's checks, run in the sandbox by the scorer: `python3 livecodebench_check.py TREE SPEC`.

SPEC (JSON) holds the problem's tests and how to run them. `stdin` problems: `TREE/solution.py` runs once per test
with the input on standard input; its output matches when, line by line and stripped of surrounding whitespace,
every line is equal or holds the same numbers (LiveCodeBench's rule). `functional` problems: one fresh process per
test calls the function with the JSON-decoded arguments (one per input line) and sends back its result, which
this process compares with the expected one: the solution is never handed the expected output and never decides
a verdict (it runs as the same sandbox user, though, so a solution that went looking could read SPEC).
Each test has a time limit; after the first time-out the rest are not run. Prints `k/n tests passed` (and the
first failure); exits 0 iff all passed. Standard library only: it runs on the sandbox's system Python.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

#: What LiveCodeBench's own runner has imported when it calls a function (LeetCode's environment is similar).
PRELUDE = """\
from string import *
from re import *
from datetime import *
from collections import *
from heapq import *
from bisect import *
from copy import *
from math import *
from random import *
from statistics import *
from itertools import *
from functools import *
from operator import *
from io import *
from sys import *
from json import *
from builtins import *
from typing import *
import string, re, datetime, collections, heapq, bisect, copy, math, random, statistics, itertools, functools
import operator, io, sys, json
sys.setrecursionlimit(50000)
"""


def same_output(got: str, expected: str) -> bool:
    """LiveCodeBench's comparison of a program's output with the expected one."""
    got_lines = [line.strip() for line in got.strip().split("\n")]
    expected_lines = [line.strip() for line in expected.strip().split("\n")]
    if len(got_lines) != len(expected_lines):
        return False
    for mine, theirs in zip(got_lines, expected_lines):
        if mine == theirs:
            continue
        try:
            if [Decimal(word) for word in mine.split()] != [Decimal(word) for word in theirs.split()]:
                return False
        except InvalidOperation:
            return False
    return True


def run_stdin_test(tree: Path, test: dict[str, str], timeout_s: float) -> str | None:
    """None if the program's output matches, else why not."""
    done = subprocess.run([sys.executable, "solution.py"], cwd=tree, input=test["input"], capture_output=True,
                          text=True, errors="replace", timeout=timeout_s)
    if done.returncode != 0:
        return f"exited with code {done.returncode}: {_last_line(done.stderr)}"
    return None if same_output(done.stdout, test["output"]) else "wrong answer"


def run_functional_test(tree: Path, func_name: str, test: dict[str, str], timeout_s: float) -> str | None:
    """None if the function's result equals the expected one, else why not."""
    try:
        arguments = [json.loads(line) for line in test["input"].split("\n")]
        expected = json.loads(test["output"])
    except json.JSONDecodeError:
        return "the dataset's test is not JSON"
    done = subprocess.run([sys.executable, __file__, "--call", str(tree), func_name], input=json.dumps(arguments),
                          capture_output=True, text=True, errors="replace", timeout=timeout_s)
    if done.returncode != 0:
        return f"raised or exited with code {done.returncode}: {_last_line(done.stderr)}"
    try:
        result = json.loads(done.stdout)
    except json.JSONDecodeError:
        return "its result is not JSON-serialisable"
    return None if result == expected else "wrong answer"


def call(tree: Path, func_name: str) -> None:
    """The child of a functional test: read the arguments, run the solution, write the result as JSON. Anything
    the solution prints goes to standard error, so only the result reaches the parent's pipe."""
    arguments = json.loads(sys.stdin.read())
    result_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout, sys.stdin = sys.stderr, io.StringIO("")
    namespace: dict[str, Any] = {"__name__": "solution"}
    exec(compile(PRELUDE, "<prelude>", "exec"), namespace)
    source = (tree / "solution.py").read_text(encoding="utf-8")
    exec(compile(source, str(tree / "solution.py"), "exec"), namespace)
    if "Solution" in namespace:
        function = getattr(namespace["Solution"](), func_name)
    else:
        function = namespace[func_name]
    result = function(*arguments)
    result_out.write(json.dumps(result))
    result_out.flush()


def main(tree: Path, spec_file: Path) -> int:
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    tests, timeout_s = spec["tests"], spec["timeout_s"]
    passed, first_failure = 0, ""
    for number, test in enumerate(tests, start=1):
        try:
            if spec["mode"] == "functional":
                failure = run_functional_test(tree, spec["func_name"], test, timeout_s)
            else:
                failure = run_stdin_test(tree, test, timeout_s)
        except subprocess.TimeoutExpired:
            first_failure = first_failure or f"test {number}: over the {timeout_s:g} s time limit (later tests not run)"
            break
        if failure is None:
            passed += 1
        else:
            first_failure = first_failure or f"test {number}: {failure}"
    print(f"{passed}/{len(tests)} tests passed" + (f"; first failure: {first_failure}" if first_failure else ""))
    return 0 if passed == len(tests) else 1


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return " ".join(lines[-1].split())[:200] if lines else "(no output)"


if __name__ == "__main__":
    if sys.argv[1] == "--call":
        call(Path(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
