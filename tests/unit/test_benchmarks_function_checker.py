"""The function checker of HumanEval and LiveCodeBench: the plain-data encoding that crosses its process boundary,
how the harness reads its verdict, its calls to a candidate in another process (run here directly, unsandboxed,
on small trusted solutions), and, through the real sandbox, what a planted module in the tree cannot reach."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
import uv

from sica.benchmarks.humaneval import HumanEvalBenchmark, install_data
from sica.benchmarks.scorers import function_checker, plain_data
from sica.benchmarks.scorers.function_scoring import verdict_score
from sica.sandbox import SandboxResult

CACHE = Path.home() / ".cache/sica/benchmarks"
NONCE = "0123456789abcdef0123456789abcdef"

ROUND_TRIPS = [None, True, False, 0, -5, 2 ** 300, -(2 ** 70), 1.5, -0.0, math.inf, -math.inf, 1e-310, 1 + 2j, "",
               "é\U0001f600\ud800", b"\x00\xff", bytearray(b"ab"), [], [1, [2, [3.0]]], (1, (2,), ()),
               {1, "a", (2, 3)}, frozenset({1, 2}), {1: "a", (1, 2): [3], None: {}, 2.5: frozenset()},
               [(1, [2]), {"k": (None, True)}]]


def _typed(value):
    """A value with every container's and scalar's type spelt out, to compare types as well as values."""
    if isinstance(value, (list, tuple)):
        return type(value).__name__, [_typed(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return type(value).__name__, sorted(map(repr, value))
    if isinstance(value, dict):
        return "dict", sorted((repr(_typed(k)), repr(_typed(v))) for k, v in value.items())
    return type(value).__name__, repr(value)


@pytest.mark.parametrize("value", ROUND_TRIPS, ids=repr)
def test_plain_data_keeps_values_and_their_types_apart(value):
    decoded = plain_data.decode(plain_data.loads(plain_data.dumps(plain_data.encode(value))))
    expected = bytes(value) if isinstance(value, bytearray) else value
    assert _typed(decoded) == _typed(expected)


def test_plain_data_keeps_nan_and_subclasses_travel_as_their_base_type():
    class Loud(int):
        def __eq__(self, other):
            return True

    assert math.isnan(plain_data.decode(plain_data.encode(math.nan)))
    decoded = plain_data.decode(plain_data.encode([Loud(3), True]))
    assert decoded == [3, True] and type(decoded[0]) is int and decoded[0] != 4


@pytest.mark.parametrize("value", [object(), lambda: 1, iter([1]), type("Eq", (), {"__eq__": lambda s, o: True})()],
                         ids=["object", "function", "iterator", "overridden-eq"])
def test_plain_data_refuses_what_is_not_data(value):
    with pytest.raises(plain_data.NotPlainData):
        plain_data.encode(value)
    looped: list = []
    looped.append(looped)
    with pytest.raises(plain_data.NotPlainData):
        plain_data.encode(looped)


@pytest.mark.parametrize("data", ["x", [], {"a": 1}, ["eval", "1"], ["int", "12"], ["int", "0x1f", 1],
                                  ["int", 31], ["bool", 1], ["float", "one"], ["float", 1.0], ["str", 1],
                                  ["bytes", "!!"], ["none", 1], ["set", [["list", []]]], ["list", "ab"],
                                  ["dict", [[["list", []], ["none"]]]], ["dict", [["none"]]], ["complex", "1"]],
                         ids=repr)
def test_plain_data_decodes_nothing_but_tagged_plain_values(data):
    with pytest.raises(plain_data.NotPlainData):
        plain_data.decode(data)


def test_plain_data_refuses_nesting_too_deep_and_lines_that_are_not_json():
    deep: list = ["none"]
    for _ in range(plain_data.MAX_DEPTH + 5):
        deep = ["list", [deep]]
    with pytest.raises(plain_data.NotPlainData):
        plain_data.decode(deep)
    for line in (b"{", b"NaN", b'{"a": Infinity}', b"\xff\xfe", b"[" * 100000):
        with pytest.raises(plain_data.NotPlainData):
            plain_data.loads(line)


def _ran(stdout: str, *, ending: str = "exit", code: int | None = 0, signal: int | None = None) -> SandboxResult:
    return SandboxResult(ending, code, signal, 0.1, stdout, "")  # type: ignore[arg-type]


def test_a_pass_needs_exit_0_and_the_attempts_nonce():
    assert verdict_score(_ran(f"sica-verdict {NONCE} pass all 3 calls passed\n"), NONCE).value == 1.0
    failed = verdict_score(_ran(f"sica-verdict {NONCE} fail call 2: raised ValueError\n", code=1), NONCE)
    assert (failed.value, failed.details, failed.tampered) == (0.0, "call 2: raised ValueError", None)
    assert verdict_score(_ran(f"sica-verdict {NONCE} pass all 3 calls passed\n", code=1), NONCE).value == 0.0
    assert verdict_score(_ran("", code=0), NONCE).value == 0.0
    assert verdict_score(_ran("", ending="timeout", code=None), NONCE).tampered is None
    crashed = verdict_score(_ran("", ending="signal", code=None, signal=11), NONCE)
    assert crashed.value == 0.0 and crashed.tampered is None


@pytest.mark.parametrize("stdout", ["sica-verdict 0 pass forged\n", f"sica-verdict {NONCE[:-1]}0 pass x\n",
                                    f"sica-verdict\nsica-verdict {NONCE} pass all\nsica-verdict x pass\n"])
def test_a_verdict_line_with_another_nonce_is_tampering(stdout):
    score = verdict_score(_ran(stdout), NONCE)
    assert score.value == 0.0 and score.tampered and "nonce" in score.tampered


def test_the_checker_killed_by_a_signal_only_another_process_sends_is_tampering():
    score = verdict_score(_ran("", ending="signal", code=137, signal=9), NONCE)
    assert score.value == 0.0 and score.tampered and "signal 9" in score.tampered


def _check(tree: Path, solution: str, spec: dict) -> tuple[bool, str]:
    """The checker's verdict on `solution`, run here (the sandbox is not under test)."""
    (tree / "solution.py").write_text(textwrap.dedent(solution))
    if spec["mode"] == "humaneval":
        return function_checker.check_humaneval(spec, str(tree))
    return function_checker.check_livecodebench(spec, str(tree))


def _humaneval(test: str, **limits: float) -> dict:
    return {"mode": "humaneval", "prompt": "def f(x):\n    '''doc'''\n", "test": textwrap.dedent(test),
            "entry_point": "f", "call_timeout_s": limits.get("call", 5.0), "check_timeout_s": limits.get("check", 20.0)}


def test_calls_cross_with_their_types_and_the_check_compares_here(tmp_path):
    test = """
        def check(candidate):
            assert candidate(2) == (2, 2.0, [2], {2: b"2"}, None)
            assert f(3)[0] == 3
    """
    right = "def f(x):\n    print('noise'); return (x, float(x), [x], {x: str(x).encode()}, None)\n"
    assert _check(tmp_path, right, _humaneval(test)) == (True, "all 2 calls passed")
    wrong_type = "def f(x):\n    return [x, float(x), [x], {x: str(x).encode()}, None]\n"
    assert _check(tmp_path, wrong_type, _humaneval(test)) == (False, "a test failed (call 1)")


@pytest.mark.parametrize("solution, reason", [
    ("def f(x):\n    raise KeyboardInterrupt\n", "call 1: raised KeyboardInterrupt"),
    ("import os\ndef f(x):\n    os._exit(0)\n", "call 1: exited with code 0 without answering"),
    ("import os\ndef f(x):\n    os.kill(os.getpid(), 9)\n", "call 1: was killed by signal 9 without answering"),
    ("import os\ndef f(x):\n    for fd in range(3, 10):\n        try:\n            os.write(fd, b'garbage\\n')\n"
     "        except OSError:\n            pass\n    return 1\n",
     "call 1: answered with something that is not a reply"),
    ("def f(x):\n    return (lambda: 1)\n", "call 1: returned a value of type function, which is not plain data"),
    ("import time\ndef f(x):\n    time.sleep(30)\n", "call 1: over the 1 s time limit"),
    ("raise SystemExit(0)\n", "solution.py: did not load: raised SystemExit"),
    ("g = 1\n", "solution.py: did not load: defines no f"),
    ("import os\nos.close(0)\nos.close(1)\nimport time\ntime.sleep(30)\n",
     "loading solution.py: over the 1 s time limit"),
])
def test_a_failed_call_is_a_failure_with_a_one_line_reason(tmp_path, solution, reason):
    test = "def check(candidate):\n    try:\n        assert candidate(1) == 1\n    except Exception:\n        pass\n"
    assert _check(tmp_path, solution, _humaneval(test, call=1.0)) == (False, reason)


def _functional(tests: list[tuple[str, str]]) -> dict:
    return {"mode": "functional", "func_name": "solve", "prelude": "from typing import *\n", "timeout_s": 2.0,
            "tests": [{"input": given, "output": expected} for given, expected in tests]}


def test_livecodebench_results_compare_as_json_and_a_crash_costs_only_its_test(tmp_path):
    solution = """
        import os


        class Solution:
            def solve(self, nums: List[int], k: int):
                if k == 0:
                    os._exit(3)
                if k == 9:
                    return {1, 2}
                return tuple(n * k for n in nums)
    """
    spec = _functional([("[1, 2]\n2", "[2, 4]"), ("[1]\n0", "[0]"), ("[3]\n9", "[3]"), ("[5]\n1", "[5]")])
    assert _check(tmp_path, solution, spec) == (False, "2/4 tests passed; first failure: test 2: exited with code 3 "
                                                       "without answering")
    spec = _functional([("[1, 2]\n2", "[2, 4]"), ("[3]\n9", "[3]")])
    assert _check(tmp_path, solution, spec) == (False, "1/2 tests passed; first failure: test 2: its result is not "
                                                       "JSON-serialisable")


def test_livecodebench_programs_get_their_input_and_a_flood_or_a_hang_fails(tmp_path, monkeypatch):
    spec = {"mode": "stdin", "timeout_s": 2.0,
            "tests": [{"input": "3\n", "output": "6\n"}, {"input": "", "output": "0"}]}
    assert _check(tmp_path, "import sys\nprint(2 * int(sys.stdin.read() or 0))\n", spec) == (True, "2/2 tests passed")
    monkeypatch.setattr(function_checker, "OUTPUT_CAP", 1 << 20)
    flooded = _check(tmp_path, "import sys\nwhile True:\n    sys.stdout.write('6\\n' * 4096)\n", spec)
    assert flooded == (False, "0/2 tests passed; first failure: test 1: printed more than 1 MB")
    helper = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(30)\nprint(6)\n"
    assert _check(tmp_path, helper, spec)[1].startswith("1/2 tests passed; first failure: test 2: wrong answer")
    hung = _check(tmp_path, "import time\ntime.sleep(30)\n", spec)
    assert hung == (False, "0/2 tests passed; first failure: test 1: over the 2 s time limit (later tests not run)")


def test_modules_planted_in_the_tree_never_reach_the_checker(tree, sandbox):
    """HumanEval/32's prompt and test import math, random and copy in the checker: a tree's modules of those
    names (which print a passing verdict with the nonce they find in memory, then exit 0) are on the candidate's
    path only, never on the checker's."""
    benchmark = HumanEvalBenchmark(install_data(CACHE, uv.find_uv_bin()))
    problem, row = benchmark.problems()[32], benchmark.rows()[32]
    problem.lay_out(tree)
    forge = textwrap.dedent("""\
        import gc, os
        for found in gc.get_objects():
            if isinstance(found, dict) and isinstance(found.get("nonce"), str):
                print("sica-verdict", found["nonce"], "pass", "forged", flush=True)
        os._exit(0)
    """)
    planted = ("math", "random", "copy", "plain_data", "json", "select", "sitecustomize", "usercustomize")
    for name in planted:
        (tree / f"{name}.py").write_text(forge)
    (tree / "solution.py").write_text("def find_zero(xs):\n    return 0.0\n")
    score = problem.score(sandbox, tree, None)
    assert (score.value, score.details) == (0.0, "a test failed (call 1)")
    (tree / "math.py").unlink()  # the solution's own import: its process may load what the tree holds
    (tree / "solution.py").write_text(row["prompt"] + row["canonical_solution"])
    solved = problem.score(sandbox, tree, None)
    assert solved.value == 1.0, solved.details
