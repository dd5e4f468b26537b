"""`livecodebench`: LiveCodeBench's code-generation problems (`livecodebench/code_generation_lite` on the Hub, the
release files `[benchmarks] livecodebench_release` names, or a local copy at `[benchmarks] livecodebench_file`).

Each problem is laid out as `solution.py`: the starter code of functional (LeetCode) problems, an empty program
reading standard input for the others. Its public and private tests stay hidden: they are decoded once into the
benchmark cache (the harness's, never mounted) and reach the sandboxed checker on its standard input only
(`scorers/function_checker.py`, score 1 iff every test passes). The checker runs the program once per test, or
calls the function in another process across a plain-data boundary, and compares the results itself.

Private tests are published as JSON, or as base64 of zlib of a pickled JSON string. That pickle is never loaded:
`pickletools` only disassembles it, and anything but a lone string is refused."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import pickletools
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sica.benchmarks.base import BenchmarkContext, DatasetError, Problem, Score, fingerprint
from sica.benchmarks.hub import hub_file, read_rows
from sica.benchmarks.scorers.function_scoring import SCRIPTS, run_function_check
from sica.sandbox import Sandbox

DATASET = "livecodebench/code_generation_lite"
SETTING = "livecodebench_file"
#: Seconds each test may take (LiveCodeBench's own default).
TEST_TIMEOUT_S = 6.0
#: What LiveCodeBench's own runner has imported when it calls a function (LeetCode's environment is similar);
#: it runs in the solution's namespace, before it.
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
_RELEASE = re.compile(r"(release_)?v([1-9][0-9]?)")
_QUESTION_ID = re.compile(r"[A-Za-z0-9_.-]+")
#: The opcodes of a pickle holding one string, and nothing else.
_STRING_PICKLE_OPS = frozenset(
    {
        "PROTO",
        "FRAME",
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "UNICODE",
        "MEMOIZE",
        "PUT",
        "BINPUT",
        "LONG_BINPUT",
        "STOP",
    }
)
_STDIN_START = """import sys


def main() -> None:
    data = sys.stdin.read()


main()
"""


def release_files(release: str) -> list[str]:
    """The dataset's files for a release: `release_vN` is cumulative (test.jsonl, test2.jsonl … testN.jsonl),
    `vN` only the problems that release added."""
    found = _RELEASE.fullmatch(release)
    if found is None:
        raise DatasetError(
            f"livecodebench_release '{release}' is not a release: use release_vN (cumulative) or vN "
            "(one release's additions), e.g. release_v6"
        )
    number = int(found.group(2))
    names = [f"test{n}.jsonl" if n > 1 else "test.jsonl" for n in range(1, number + 1)]
    return names if found.group(1) else names[-1:]


def livecodebench_rows(context: BenchmarkContext, count: int | None) -> Iterator[dict[str, Any]]:
    """The dataset's rows in order (at least `count` when there are that many), reading release files from the
    Hub only as far as needed."""
    if context.livecodebench_file is not None:
        yield from read_rows(context.livecodebench_file, SETTING, count)
        return
    seen = 0
    for name in release_files(context.livecodebench_release):
        for row in read_rows(hub_file(context, DATASET, name, SETTING), SETTING):
            yield row
            seen += 1
            if count is not None and seen >= count:
                return


def open_livecodebench(context: BenchmarkContext, count: int | None) -> list[Problem]:
    """The first `count` problems (all when None), their hidden tests decoded into the cache."""
    tests_dir = context.cache_dir / "livecodebench" / "tests"
    tests_dir.mkdir(parents=True, exist_ok=True)
    problems: list[Problem] = []
    ids: set[str] = set()
    for number, row in enumerate(livecodebench_rows(context, count), start=1):
        problem = _problem(row, number, tests_dir)
        if problem.id not in ids:
            ids.add(problem.id)
            problems.append(problem)
        if count is not None and len(problems) >= count:
            break
        if number % 50 == 0:
            context.on_progress(f"decoded the tests of {number} problems")
    if not problems:
        raise DatasetError(
            f"LiveCodeBench has no problems to load: the file holds no rows; set [benchmarks] {SETTING} "
            "to a file in the dataset's schema"
        )
    return problems


def decode_tests(field: Any) -> list[dict[str, Any]]:
    """A test-case field as published: a list, JSON text, or base64 of zlib of a pickled JSON string."""
    if isinstance(field, list):
        return field
    if not isinstance(field, str):
        raise ValueError(f"a {type(field).__name__}, not text")
    text = field.strip()
    if not text.startswith("["):
        try:
            text = _pickled_string(zlib.decompress(base64.b64decode(text, validate=True)))
        except (binascii.Error, zlib.error) as error:
            raise ValueError(f"neither JSON nor base64 of zlib data ({error})") from None
    tests = json.loads(text)
    if not isinstance(tests, list):
        raise ValueError("not a list of tests")
    return tests


def _pickled_string(data: bytes) -> str:
    """The one string a pickle holds, read by disassembling it (nothing is unpickled)."""
    strings: list[str] = []
    for opcode, argument, _ in pickletools.genops(data):
        if opcode.name not in _STRING_PICKLE_OPS:
            raise ValueError(f"a pickle holding more than a string ({opcode.name}); it is not loaded")
        if opcode.name.endswith("UNICODE") and isinstance(argument, str):
            strings.append(argument)
    if len(strings) != 1:
        raise ValueError("a pickle without exactly one string")
    return strings[0]


def _problem(row: dict[str, Any], number: int, tests_dir: Path) -> Problem:
    """One row as a problem; its tests are written to `tests_dir` (once: the file is named by their content)."""
    where, fix = f"LiveCodeBench row {number}", f"set [benchmarks] {SETTING} to a file in LiveCodeBench's schema"
    try:
        question_id, title, content = (str(row[key]) for key in ("question_id", "question_title", "question_content"))
        starter = str(row.get("starter_code") or "")
        metadata = row.get("metadata") or "{}"
        metadata = json.loads(metadata) if isinstance(metadata, str) else metadata
        public, private = row["public_test_cases"], row["private_test_cases"]
    except (KeyError, json.JSONDecodeError) as error:
        raise DatasetError(f"{where} is malformed ({type(error).__name__}: {error}); {fix}") from None
    where = f"LiveCodeBench problem {question_id}"
    if not _QUESTION_ID.fullmatch(question_id):
        raise DatasetError(f"{where}: the question_id is not a plain name; {fix}")
    try:
        tests = [*decode_tests(public), *decode_tests(private)]
        cases = [{"input": str(test["input"]), "output": str(test["output"])} for test in tests]
        kinds = {test["testtype"] for test in tests}
    except (ValueError, TypeError, KeyError) as error:
        raise DatasetError(f"{where}: its test cases do not decode ({type(error).__name__}: {error}); {fix}") from None
    if not cases or len(kinds) != 1 or not kinds <= {"stdin", "functional"}:
        raise DatasetError(
            f"{where}: needs tests of one type, stdin or functional (has {sorted(kinds) or 'none'}); {fix}"
        )
    mode = kinds.pop()
    func_name = metadata.get("func_name") if isinstance(metadata, dict) else None
    if mode == "functional" and not (isinstance(func_name, str) and func_name.isidentifier()):
        raise DatasetError(f"{where}: functional tests need metadata.func_name; {fix}")
    test_count = len(cases)
    spec = json.dumps({"mode": mode, "func_name": func_name, "timeout_s": TEST_TIMEOUT_S, "tests": cases})
    tests_file = tests_dir / f"{question_id}-{hashlib.sha256(spec.encode()).hexdigest()[:16]}.json"
    if not tests_file.exists():
        part = tests_file.with_name(f".{tests_file.name}.{os.getpid()}")
        part.write_text(spec, encoding="utf-8")
        os.replace(part, tests_file)
    start = (
        "from typing import *  # as on LeetCode, where List, Optional ... need no import\n\n" + starter
        if mode == "functional"
        else _STDIN_START
    )

    def lay_out(dest: Path) -> None:
        (dest / "solution.py").write_text(start, encoding="utf-8")

    def score(sandbox: Sandbox, final_tree: Path, answer: str | None) -> Score:
        check = json.loads(tests_file.read_text(encoding="utf-8")) | {"timeout_s": TEST_TIMEOUT_S, "prelude": PRELUDE}
        return run_function_check(sandbox, final_tree, check, wall_s=60 + test_count * (2 * TEST_TIMEOUT_S + 1))

    statement = _statement(title, content, mode, func_name, row.get("platform"))
    return Problem(
        f"livecodebench/{question_id}",
        "livecodebench",
        statement,
        lay_out,
        score,
        fingerprint=fingerprint(tests_file, PRELUDE, *SCRIPTS),
    )


def _statement(title: str, content: str, mode: str, func_name: str | None, platform: Any) -> str:
    if mode == "functional":
        how = (
            f"`solution.py` holds the starter code: complete `{func_name}` (keep its name and signature). Each "
            "hidden test calls it once with the test's arguments and compares its return value with the "
            "expected one. The usual standard-library names (typing's List and Optional, collections, math, "
            "heapq, bisect, itertools, functools, ...) are already imported when it is called."
        )
    else:
        how = (
            "Write the program in `solution.py`: each hidden test runs `python3 solution.py` once, with the "
            "test's input on standard input, and compares what it prints with the expected output, line by "
            "line, ignoring surrounding whitespace."
        )
    source = f" (from {platform})" if platform else ""
    return (
        f"# {title}{source}\n\n{content.strip()}\n\n---\n\n{how} Use Python 3 and its standard library only; "
        f"each test has a time limit of {TEST_TIMEOUT_S:g} seconds.\n"
    )
