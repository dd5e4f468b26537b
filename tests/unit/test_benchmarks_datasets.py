"""The network-loaded datasets, offline: LiveCodeBench and SWE-bench Verified from hand-written rows in their real
schemas (tests/fixtures/), the Hub download path against a loopback server, LiveCodeBench scored through the real
sandbox, SWE-bench laid out from a real local git repository and scored through a stand-in for the official
harness (the command, predictions and dataset files it gets, and the report it leaves)."""

from __future__ import annotations

import base64
import json
import os
import pickle
import stat
import subprocess
import sys
import textwrap
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow
import pyarrow.parquet
import pytest

from sica.benchmarks import BenchmarkContext, DatasetError, SwebenchError, open_benchmark
from sica.benchmarks import livecodebench
from sica.benchmarks.livecodebench import decode_tests, release_files
from sica.benchmarks.swebench import HARNESS_REQUIREMENT, SwebenchHarness
from sica.config import ConfigError

FIXTURES = Path(__file__).parents[1] / "fixtures"
LCB_FILE = FIXTURES / "livecodebench.jsonl"
SWE_FILE = FIXTURES / "swebench_verified.jsonl"
LCB_PATH = "/datasets/livecodebench/code_generation_lite/resolve/main/test.jsonl"
SWE_PATH = "/datasets/princeton-nlp/SWE-bench_Verified/resolve/main/data/test-00000-of-00001.parquet"

#: Known-good solutions of the fixture's problems (one prints on the way, which must not disturb its result).
GOOD = {
    "livecodebench/abc990_a": "n = input().strip()\nprint('Even' if sum(map(int, n)) % 2 == 0 else 'Odd')\n",
    "livecodebench/9901": textwrap.dedent("""\
        from typing import List


        class Solution:
            def countPairs(self, nums: List[int], target: int) -> int:
                print("counting")
                return sum(1 for i in range(len(nums)) for j in range(i + 1, len(nums))
                           if nums[i] + nums[j] == target)
        """),
    "livecodebench/1990_B": "n = int(input())\nheights = list(map(int, input().split()))\nprint(sum(heights) / n)\n",
}


def context(tmp_path: Path, **settings) -> BenchmarkContext:
    return BenchmarkContext(tmp_path / "cache", tmp_path / "envs", "uv", **settings)


def test_settings_reach_the_context_paths_relative_to_the_config(make_settings):
    settings = make_settings("""
        [benchmarks]
        livecodebench_file = "data/lcb.jsonl"
        livecodebench_release = "v5"
        swebench_repo_url = "/srv/git/{repo}.git"
        swebench_score = "skip"
    """)
    benchmarks = settings.benchmarks
    assert benchmarks.livecodebench_file is not None and benchmarks.livecodebench_file.is_absolute()
    assert (benchmarks.livecodebench_release, benchmarks.swebench_score) == ("v5", "skip")
    for bad, message in [('swebench_repo_url = "https://github.com/x.git"', "needs the placeholder {repo}"),
                         ('livecodebench_release = "latest"', "livecodebench_release: String should match"),
                         ('swebench_score = "maybe"', "swebench_score: Input should be 'harness' or 'skip'")]:
        with pytest.raises(ConfigError, match=message):
            make_settings(f"[benchmarks]\n{bad}\n")


# ------------------------------------------------------------------------------------------------ LiveCodeBench


def test_livecodebench_lays_out_the_start_and_keeps_tests_hidden(tmp_path, tree):
    problems = open_benchmark("livecodebench", context(tmp_path, livecodebench_file=LCB_FILE))
    assert [p.id for p in problems] == list(GOOD)
    stdin_problem, functional_problem = problems[0], problems[1]
    assert "sum of the decimal digits" in stdin_problem.statement and "standard input" in stdin_problem.statement
    assert "`countPairs`" in functional_problem.statement
    functional_problem.lay_out(tree)
    assert [p.name for p in tree.iterdir()] == ["solution.py"]
    start = (tree / "solution.py").read_text()
    assert "def countPairs(self, nums: List[int], target: int) -> int:" in start
    for hidden in ("[5, 5, 5, 5, 5]", "[-1, 1, 0, 0]"):  # private test inputs: only in the cache, never in the tree
        assert hidden not in start and hidden not in functional_problem.statement


@pytest.mark.parametrize("problem_id", list(GOOD))
def test_livecodebench_good_solutions_score_one_and_starts_zero(tmp_path, tree, sandbox, problem_id):
    problem = next(p for p in open_benchmark("livecodebench", context(tmp_path, livecodebench_file=LCB_FILE))
                   if p.id == problem_id)
    problem.lay_out(tree)
    start = problem.score(sandbox, tree, None)
    assert start.value == 0.0 and "tests passed" in start.details
    (tree / "solution.py").write_text(GOOD[problem_id])
    solved = problem.score(sandbox, tree, None)
    assert solved.value == 1.0, solved.details
    tests = {"livecodebench/abc990_a": 6, "livecodebench/9901": 5, "livecodebench/1990_B": 3}[problem_id]
    assert f"{tests}/{tests} tests passed" in solved.details


def test_livecodebench_wrong_answers_and_time_outs_score_zero(tmp_path, tree, sandbox, monkeypatch):
    monkeypatch.setattr(livecodebench, "TEST_TIMEOUT_S", 1.0)
    problems = open_benchmark("livecodebench", context(tmp_path, livecodebench_file=LCB_FILE))
    problems[0].lay_out(tree)
    (tree / "solution.py").write_text("print('Even')\n")  # right on half the tests
    wrong = problems[0].score(sandbox, tree, None)
    assert wrong.value == 0.0 and "3/6 tests passed; first failure: test 2: wrong answer" in wrong.details
    (tree / "solution.py").write_text("while True:\n    pass\n")
    slow = problems[0].score(sandbox, tree, None)
    assert slow.value == 0.0 and "0/6 tests passed; first failure: test 1: over the 1 s time limit" in slow.details
    problems[1].lay_out(tree)
    (tree / "solution.py").write_text(GOOD["livecodebench/9901"].replace("return sum(", "return -sum("))
    assert problems[1].score(sandbox, tree, None).value == 0.0


def test_livecodebench_private_tests_decode_without_unpickling(tmp_path):
    tests = [{"input": "1\n", "output": "2\n", "testtype": "stdin"}]
    assert decode_tests(json.dumps(tests)) == tests
    assert decode_tests(base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests), protocol=2))).decode()) == tests
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    hostile = base64.b64encode(zlib.compress(pickle.dumps(Exploit()))).decode()
    with pytest.raises(ValueError, match="more than a string"):
        decode_tests(hostile)
    assert not marker.exists()


def test_livecodebench_bad_rows_are_one_clear_line(tmp_path):
    row = json.loads(LCB_FILE.read_text().splitlines()[1])
    cases = [({k: v for k, v in row.items() if k != "question_content"}, "row 1 is malformed"),
             ({**row, "private_test_cases": "not base64 at all!"}, "its test cases do not decode"),
             ({**row, "metadata": "{}"}, "functional tests need metadata.func_name"),
             ({**row, "question_id": "../etc"}, "question_id is not a plain name")]
    for bad, message in cases:
        data = tmp_path / "bad.jsonl"
        data.write_text(json.dumps(bad) + "\n")
        with pytest.raises(DatasetError, match=message) as caught:
            open_benchmark("livecodebench", context(tmp_path, livecodebench_file=data))
        assert "\n" not in str(caught.value) and "livecodebench_file" in str(caught.value)
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text(LCB_FILE.read_text().splitlines()[0] + "\nnot json\n")
    with pytest.raises(DatasetError, match=r"garbage.jsonl: line 2 is not JSON.*set \[benchmarks\] livecodebench_file"):
        open_benchmark("livecodebench", context(tmp_path, livecodebench_file=garbage))


def test_livecodebench_release_files():
    assert release_files("release_v3") == ["test.jsonl", "test2.jsonl", "test3.jsonl"]
    assert release_files("v1") == ["test.jsonl"] and release_files("v6") == ["test6.jsonl"]
    with pytest.raises(DatasetError, match="use release_vN"):
        release_files("latest")


# ------------------------------------------------------------------------------------------- SWE-bench Verified


def _git(repo: Path, *args: str) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
           "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.org", "GIT_COMMITTER_NAME": "Ada",
           "GIT_COMMITTER_EMAIL": "ada@example.org", "GIT_AUTHOR_DATE": "2023-05-01T12:00:00+00:00",
           "GIT_COMMITTER_DATE": "2023-05-01T12:00:00+00:00"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


TEXTSTATS = '''"""Small statistics over lists of numbers."""


def mean(values):
    """The arithmetic mean of `values`."""
    return sum(values) / len(values)


def variance(values):
    """The population variance of `values`."""
    centre = mean(values)
    return sum((value - centre) ** 2 for value in values) / (len(values) - 1)
'''
MEDIAN = '''

def median(values):
    """The middle value of `values` (the mean of the two middle ones when their number is even)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
'''


@pytest.fixture
def repos(tmp_path) -> Path:
    """The fixture rows' repository, sica-fixtures/textstats, as a real git repository with two commits (fixed
    authors and dates, so their ids are the rows' base commits); returns the folder of repositories."""
    repo = tmp_path / "repos" / "sica-fixtures" / "textstats"
    (repo / "textstats").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "textstats" / "__init__.py").write_text(TEXTSTATS)
    (repo / "tests" / "test_textstats.py").write_text(
        "from textstats import mean, variance\n\n\ndef test_mean():\n    assert mean([1, 2, 3, 4]) == 2.5\n\n\n"
        "def test_variance_of_constant_values_is_zero():\n    assert variance([5, 5, 5]) == 0\n")
    (repo / "README.md").write_text("# textstats\n\nSmall statistics over lists of numbers.\n")
    _git(repo, "init", "--quiet", "--initial-branch=main")
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "-m", "textstats: mean and variance")
    (repo / "textstats" / "__init__.py").write_text(TEXTSTATS + MEDIAN)
    (repo / "README.md").write_text("# textstats\n\nSmall statistics over lists of numbers: mean, variance, median.\n")
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "-m", "textstats: median")
    rows = [json.loads(line) for line in SWE_FILE.read_text().splitlines()]
    assert [_git(repo, "rev-parse", "HEAD~1"), _git(repo, "rev-parse", "HEAD")] == [r["base_commit"] for r in rows]
    return tmp_path / "repos"


def test_swebench_rows_become_problems_without_hints_or_gold_patches(tmp_path):
    problems = open_benchmark("swebench_verified", context(tmp_path, swebench_file=SWE_FILE, swebench_score="skip"))
    assert [p.id for p in problems] == ["swebench_verified/sica-fixtures__textstats-12",
                                        "swebench_verified/sica-fixtures__textstats-19"]
    statement = problems[0].statement
    assert statement.startswith("variance() returns the sample variance") and "sica-fixtures/textstats" in statement
    assert "len(values)`." not in statement and "test_variance_is_population_variance" not in statement
    assert len(open_benchmark("swebench_verified:1", context(tmp_path, swebench_file=SWE_FILE,
                                                               swebench_score="skip"))) == 1


def test_swebench_lays_out_the_base_commit_without_history(tmp_path, tree, repos):
    settings = {"swebench_file": SWE_FILE, "swebench_score": "skip", "swebench_repo_url": f"{repos}/{{repo}}"}
    first, second = open_benchmark("swebench_verified", context(tmp_path, **settings))
    first.lay_out(tree)
    assert sorted(p.name for p in tree.iterdir()) == ["README.md", "tests", "textstats"]  # no .git: no later commits
    assert "def median" not in (tree / "textstats" / "__init__.py").read_text()
    row = json.loads(SWE_FILE.read_text().splitlines()[0])
    subprocess.run(["git", "apply", "--check", "-"], input=row["patch"] + row["test_patch"], text=True, cwd=tree,
                   check=True)
    other = tree / "second"
    other.mkdir()
    second.lay_out(other)
    assert "def median" in (other / "textstats" / "__init__.py").read_text()
    assert first.score(None, tree, None).details.startswith('not scored: [benchmarks] swebench_score = "skip"')


def test_swebench_harness_command_and_prediction():
    harness = SwebenchHarness(("/opt/sb/bin/python",), timeout_s=900)
    assert harness.command(Path("/r/dataset.json"), Path("/r/predictions.jsonl"), "django__django-11099", "run1") == [
        "/opt/sb/bin/python", "-m", "swebench.harness.run_evaluation", "--dataset_name", "/r/dataset.json",
        "--split", "test", "--instance_ids", "django__django-11099", "--predictions_path", "/r/predictions.jsonl",
        "--max_workers", "1", "--timeout", "900", "--run_id", "run1"]
    assert harness.prediction("django__django-11099", "diff --git a/x b/x\n") == {
        "instance_id": "django__django-11099", "model_name_or_path": "sica", "model_patch": "diff --git a/x b/x\n"}
    assert harness.report_file(Path("/r"), "run1", "i-1") == Path("/r/logs/run_evaluation/run1/sica/i-1/report.json")
    default = SwebenchHarness.for_context(BenchmarkContext(Path("/c"), Path("/e"), "/bin/uv"))
    assert default.python == ("/bin/uv", "tool", "run", "--quiet", "--from", HARNESS_REQUIREMENT, "python")


FAKE_HARNESS = '''#!{python}
"""Stands in for a Python with swebench: answers the probe, and plays run_evaluation on one instance, resolving it
when the model patch makes every change of the gold patch."""
import json, pathlib, sys
if sys.argv[1] == "-c":
    sys.exit({probe_exit})
args = dict(zip(sys.argv[3::2], sys.argv[4::2]))
with open({calls!r}, "a") as calls:
    calls.write(json.dumps({{"argv": sys.argv[1:], "cwd": str(pathlib.Path.cwd())}}) + "\\n")
(row,) = json.loads(pathlib.Path(args["--dataset_name"]).read_text())
(prediction,) = [json.loads(line) for line in pathlib.Path(args["--predictions_path"]).read_text().splitlines()]
changes = [line for line in row["patch"].splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
resolved = all(change in prediction["model_patch"].splitlines() for change in changes)
report = {{row["instance_id"]: {{"resolved": resolved, "tests_status": {{
    "FAIL_TO_PASS": {{"success": json.loads(row["FAIL_TO_PASS"]) if resolved else [],
                     "failure": [] if resolved else json.loads(row["FAIL_TO_PASS"])}},
    "PASS_TO_PASS": {{"success": json.loads(row["PASS_TO_PASS"]), "failure": []}}}}}}}}
folder = pathlib.Path("logs/run_evaluation", args["--run_id"], prediction["model_name_or_path"], row["instance_id"])
folder.mkdir(parents=True)
(folder / "report.json").write_text(json.dumps(report))
print("Instances resolved:", int(resolved))
'''


def _fake_harness(tmp_path: Path, probe_exit: int = 0) -> Path:
    script = tmp_path / "fake-python"
    script.write_text(FAKE_HARNESS.format(python=sys.executable, probe_exit=probe_exit,
                                          calls=str(tmp_path / "calls.jsonl")))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture
def engine_on_path(tmp_path, monkeypatch):
    """A `docker` on PATH (the harness's own probe decides whether it works)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_swebench_scores_the_final_diff_through_the_harness(tmp_path, tree, repos, engine_on_path):
    settings = {"swebench_file": SWE_FILE, "swebench_repo_url": f"{repos}/{{repo}}",
                "swebench_python": _fake_harness(tmp_path)}
    problem = open_benchmark("swebench_verified:1", context(tmp_path, **settings))[0]
    problem.lay_out(tree)
    assert problem.score(None, tree, None).details == "not resolved: the repository was not changed"
    module = tree / "textstats" / "__init__.py"
    module.write_text(module.read_text().replace("return sum(values) / len(values)", "return sum(values) / 2"))
    wrong = problem.score(None, tree, None)
    assert wrong.value == 0.0 and wrong.details.startswith("not resolved (FAIL_TO_PASS 0/1, PASS_TO_PASS 2/2)")
    module.write_text(TEXTSTATS.replace("/ (len(values) - 1)", "/ len(values)"))
    (tree / "NOTES.md").write_text("population variance\n")
    resolved = problem.score(None, tree, None)
    assert resolved.value == 1.0 and resolved.details == "resolved (FAIL_TO_PASS 1/1, PASS_TO_PASS 2/2)"

    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert len(calls) == 2
    run_dir = Path(calls[-1]["cwd"])
    assert run_dir.parent == tmp_path / "cache" / "swebench" / "runs"
    assert calls[-1]["argv"] == [
        "-m", "swebench.harness.run_evaluation", "--dataset_name", str(run_dir / "dataset.json"), "--split", "test",
        "--instance_ids", "sica-fixtures__textstats-12", "--predictions_path", str(run_dir / "predictions.jsonl"),
        "--max_workers", "1", "--timeout", "1800", "--run_id", run_dir.name]
    (prediction,) = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert prediction["model_name_or_path"] == "sica" and "+++ b/NOTES.md" in prediction["model_patch"]
    assert "-    return sum((value - centre) ** 2 for value in values) / (len(values) - 1)" in prediction["model_patch"]
    assert json.loads((run_dir / "dataset.json").read_text()) == [json.loads(SWE_FILE.read_text().splitlines()[0])]


def test_swebench_refuses_to_open_when_it_cannot_be_scored(tmp_path, monkeypatch, engine_on_path):
    settings = {"swebench_file": SWE_FILE, "swebench_python": _fake_harness(tmp_path, probe_exit=3)}
    with pytest.raises(SwebenchError, match=r'cannot be scored here: .*swebench_score = "skip"') as caught:
        open_benchmark("swebench_verified", context(tmp_path, **settings))
    assert "\n" not in str(caught.value)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(SwebenchError, match=r"no container engine \(docker or podman\) on PATH"):
        SwebenchHarness(("python3",)).check()


def test_swebench_unreachable_repositories_and_bad_rows_are_one_clear_line(tmp_path, tree):
    settings = {"swebench_file": SWE_FILE, "swebench_score": "skip", "swebench_repo_url": f"{tmp_path}/none/{{repo}}"}
    problem = open_benchmark("swebench_verified:1", context(tmp_path, **settings))[0]
    with pytest.raises(SwebenchError, match=r"cloning .*/none/sica-fixtures/textstats failed: .*swebench_repo_url"):
        problem.lay_out(tree)
    row = json.loads(SWE_FILE.read_text().splitlines()[0])
    for bad, message in [({**row, "base_commit": "main"}, "base_commit 'main' is not a valid one"),
                         ({**row, "repo": "../../etc"}, "repo '../../etc' is not a valid one"),
                         ({k: v for k, v in row.items() if k != "test_patch"}, "no text in test_patch")]:
        data = tmp_path / "bad.json"
        data.write_text(json.dumps([bad]))
        with pytest.raises(DatasetError, match=message) as caught:
            open_benchmark("swebench_verified", context(tmp_path, swebench_file=data, swebench_score="skip"))
        assert "\n" not in str(caught.value) and "swebench_file" in str(caught.value)


# ------------------------------------------------------------------------------------------------- the Hub path


class _Hub(BaseHTTPRequestHandler):
    """Serves `routes` (path → (status, body)); `/resolve/` paths redirect to a CDN-like path, as the Hub does."""

    routes: dict[str, tuple[int, bytes]] = {}
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.requests.append(self.path)
        if not self.path.startswith("/cdn/"):
            self.send_response(302)
            self.send_header("Location", "/cdn" + self.path)
            self.end_headers()
            return
        status, body = self.routes.get(self.path.removeprefix("/cdn"), (404, b"Entry not found"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hub() -> Iterator[tuple[str, type[_Hub]]]:
    handler = type("Hub", (_Hub,), {"routes": {}, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_livecodebench_downloads_only_the_files_it_needs_once(tmp_path, hub):
    endpoint, handler = hub
    handler.routes[LCB_PATH] = (200, LCB_FILE.read_bytes())
    messages: list[str] = []
    settings = {"hf_endpoint": endpoint, "livecodebench_release": "release_v6"}
    problems = open_benchmark("livecodebench:2", context(tmp_path, on_progress=messages.append, **settings))
    assert [p.id for p in problems] == ["livecodebench/abc990_a", "livecodebench/9901"]
    assert handler.requests == [LCB_PATH, "/cdn" + LCB_PATH]  # test2.jsonl ... were not needed
    assert any(message.startswith("downloading livecodebench/code_generation_lite/test.jsonl") for message in messages)
    assert len(open_benchmark("livecodebench:3", context(tmp_path, **settings))) == 3
    assert len(handler.requests) == 2  # the cached copy served the second opening


def test_swebench_downloads_the_parquet_file(tmp_path, hub):
    endpoint, handler = hub
    rows = [json.loads(line) for line in SWE_FILE.read_text().splitlines()]
    parquet = tmp_path / "verified.parquet"
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), parquet)
    handler.routes[SWE_PATH] = (200, parquet.read_bytes())
    problems = open_benchmark("swebench_verified", context(tmp_path, hf_endpoint=endpoint, swebench_score="skip"))
    assert [p.id.split("/")[1] for p in problems] == [row["instance_id"] for row in rows]


@pytest.mark.parametrize(("status", "body", "message"), [
    (404, b"Entry not found", r"downloading .*/test.jsonl failed \(HTTP 404\)"),
    (200, b"<html>rate limited</html>", r"/test.jsonl did not serve the dataset file: line 1 is not JSON"),
    (200, b"", r"/test.jsonl did not serve the dataset file: it holds no rows"),
])
def test_failed_downloads_are_one_line_and_leave_no_cache(tmp_path, hub, status, body, message):
    endpoint, handler = hub
    handler.routes[LCB_PATH] = (status, body)
    with pytest.raises(DatasetError, match=message) as caught:
        open_benchmark("livecodebench", context(tmp_path, hf_endpoint=endpoint))
    assert "\n" not in str(caught.value)
    assert str(caught.value).endswith("or download the file yourself and set [benchmarks] livecodebench_file to it")
    assert not any(path.is_file() for path in (tmp_path / "cache" / "hub").rglob("*"))


def test_no_network_is_one_line_naming_the_file_setting(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    closed = f"http://127.0.0.1:{server.server_address[1]}"
    server.server_close()
    with pytest.raises(DatasetError, match=r"failed \(ConnectError: .*set \[benchmarks\] swebench_file to it$"):
        open_benchmark("swebench_verified", context(tmp_path, hf_endpoint=closed, swebench_score="skip"))
