#!/usr/bin/env python
"""How long each page of `sica view` takes for a large run: 50 versions × 100 problems (90 selection, 10 held
out), 49 meta steps, a ledger of 10 000 calls on the run's account tree, a results store linking every result to
its attempt folder, and one attempt with 2 000 events and 100 ledger calls.

The run is synthetic but real: made with `Run.create` and `Run.add_version` (git commits of agent 0's tree with
a change each), results with `Run.record_evaluation`, the ledger with the gateway's own `Ledger` tables. Each page
is requested through the viewer's app in-process (`fastapi.testclient`, so the time is the server's: routing,
reading and rendering, no network), `--repeats` times after one warm-up; the table gives the median and the
slowest against the target (1 s a page). Beside the run page stands the baseline of what `sica report` takes to
gather the same run and render its HTML (`gather_report` + `render_html`, no plots), which the run page builds on.

    .venv/bin/python bench/viewer_pages.py                 # about a minute, most of it making the run
    .venv/bin/python bench/viewer_pages.py --repeats 10 --keep /tmp/big-run
    .venv/bin/python bench/viewer_pages.py --versions 5 --problems 10 --repeats 1    # a small run, in seconds
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fastapi.testclient import TestClient  # noqa: E402

from sica.archive import Run  # noqa: E402
from sica.config import UtilitySettings  # noqa: E402
from sica.gateway.ledger import Ledger  # noqa: E402
from sica.report import gather_report  # noqa: E402
from sica.report.html import render_html  # noqa: E402
from sica.runner.environments import seed_agent_dir  # noqa: E402
from sica.runner.results import ProblemResult, ResultStore  # noqa: E402
from sica.viewer import Sources, create_app, runs  # noqa: E402
from sica.viewer.links import version_code_hash  # noqa: E402

TARGET_S = 1.0


@dataclass(frozen=True)
class Size:
    """How large the synthetic run is (the issue's figure: 50 versions × 100 problems)."""

    versions: int = 50
    selection: int = 90
    holdout: int = 10
    calls: int = 10_000
    events: int = 2_000


@dataclass(frozen=True)
class Result:
    problem_id: str
    benchmark: str
    part: str
    status: str
    score: float
    cost_usd: float
    seconds: float
    input_tokens: int = 1000
    output_tokens: int = 100
    details: str = "exited with code 0"
    infra: bool = False
    trace_summary: str = "## Problem\n\nA synthetic problem.\n"
    overseer: str = ""


def make_run(home: Path, size: Size) -> tuple[Path, str]:
    """The run folder `home/runs/big` and the address of its busiest attempt."""
    rng = random.Random(0)
    runs, evals = home / "runs", home / "evals"
    folder = runs / "big"
    config = {"benchmarks": ["toy:90"], "holdout": ["toy:10"], "model": "scripted", "policy": "sica"}
    problems = [
        (f"toy/{n}", "selection" if n < size.selection else "holdout") for n in range(size.selection + size.holdout)
    ]
    store = ResultStore(evals / "results.sqlite")
    accounts: list[tuple[str, str | None, str]] = []
    run_account = uuid.uuid4().hex
    accounts.append((run_account, None, "run big"))
    busiest = ""
    with Run.create(folder, seed_agent_dir(), config) as run:
        run.db.set_state("account:run", run_account)
        run.db.set_state("selection problems", [p for p, part in problems if part == "selection"])
        for number in range(size.versions):
            if number:
                base = rng.randrange(number)
                step = run.db.start_meta_step(number, 0, base)
                code = home / f"code-{number}"
                run.checkout(base, code)
                with (code / "CHANGELOG.md").open("a") as log:
                    log.write(f"- change {number}: retries failed edits up to {number} times\n")
                last = number == size.versions - 1  # the busiest attempt is the last version's
                invalid = "it does not import" if number % 7 == 3 and not last else None
                run.add_version(base, code, f"agent {number}: retries edits {number} times", "- change", invalid)
                run.db.end_meta_step(step, "done", 0.02, number)
                if number == 1:
                    write_attempt(folder / "meta" / "iteration-1", "meta", "big", size.events)
                shutil.rmtree(code)
                if invalid:
                    continue
            iteration = uuid.uuid4().hex
            accounts.append((iteration, run_account, f"iteration {number}"))
            eval_id = f"eval-{number:03d}"
            eval_account = uuid.uuid4().hex
            accounts.append((eval_account, iteration, f"eval {eval_id}"))
            skill = rng.uniform(0.3, 0.8)
            code = version_code_hash(run, number)
            for problem, part in problems:
                score = 1.0 if rng.random() < skill else 0.0
                attempt = evals / eval_id / "problems" / problem.replace("/", "_") / "try-1"
                result = Result(problem, "toy", part, "done" if score else "failed", score, 0.002, 3.0)
                run.record_evaluation(number, result)
                store.put(
                    ProblemResult(
                        f"{eval_id}-{problem}",
                        problem,
                        "toy",
                        part,
                        result.status,
                        score,
                        "",
                        0.002,
                        1000,
                        100,
                        3.0,
                        0.0,
                        1,
                        str(attempt),
                    ),
                    code,
                    "scripted",
                    eval_id,
                )
                accounts.append((uuid.uuid4().hex, eval_account, f"{problem} {eval_id}"))
                if number == size.versions - 1 and problem == "toy/0":
                    busiest = str(attempt.relative_to(evals))
                    write_attempt(attempt, problem, eval_id, size.events)
        run.db.set_state("iteration", size.versions - 1)
        run.db.set_state("agent-0 evaluated", True)
    store.close()
    write_ledger(folder / "run.sqlite", accounts, rng, size)
    return folder, busiest


def write_attempt(folder: Path, problem: str, eval_id: str, events_count: int) -> None:
    (folder / "logdir").mkdir(parents=True)
    with (folder / "logdir" / "events.jsonl").open("w") as events:
        for n in range(events_count):
            kind = ("llm_call", "tool_call", "tool_result", "message")[n % 4]
            data = {"text": f"step {n}"} if kind == "message" else {"tool": "run", "output": "x" * 200, "ok": True}
            if kind == "llm_call":
                data = {"model": "m", "input_tokens": 1000, "output_tokens": 20, "seconds": 0.1, "stop_reason": "x"}
            line = {
                "v": 1,
                "ts": time.time(),
                "run": eval_id,
                "problem": problem,
                "agent_id": f"main-{n // 500}",
                "parent_id": None if n < 500 else "main-0",
                "type": kind,
                "data": data,
            }
            events.write(json.dumps(line) + "\n")
    (folder / "outcome.json").write_text(json.dumps({"status": "done", "score": {"value": 1.0}, "cost_usd": 0.1}))
    (folder / "diff.patch").write_text("".join(f"+line {n}\n" for n in range(2000)))


def write_ledger(database: Path, accounts: list[tuple[str, str | None, str]], rng: random.Random, size: Size) -> None:
    Ledger(database).close()  # the gateway's own tables
    with closing(sqlite3.connect(database)) as db, db:
        db.executemany(
            "INSERT INTO accounts (id, parent_id, name, created_at) VALUES (?, ?, ?, ?)",
            [(ident, parent, name, time.time()) for ident, parent, name in accounts],
        )
        busiest = next(ident for ident, _, name in accounts if name == f"toy/0 eval-{size.versions - 1:03d}")
        problem_accounts = [ident for ident, _, name in accounts if name.startswith("toy/") and ident != busiest]
        body = json.dumps({"messages": [{"role": "user", "content": "q" * 2000}] * 20})
        reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": "a" * 500}}]})
        start = time.time() - 3600
        rows = []
        for n in range(size.calls):
            account = busiest if n < 100 else rng.choice(problem_accounts)
            rows.append(
                (
                    account,
                    "m",
                    "scripted",
                    "m",
                    0,
                    "bench",
                    "ok",
                    1000,
                    100,
                    2_000_000,
                    2_000_000,
                    1100,
                    start + n * 0.3,
                    start + n * 0.3 + 0.2,
                    body,
                    reply,
                )
            )
        db.executemany(
            "INSERT INTO calls (account_id, alias, provider, model, stream, owner, status, input_tokens,"
            " output_tokens, cost_nano, reserved_nano, reserved_tokens, started_at, ended_at, request_body,"
            " response_body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def timed(action, repeats: int) -> list[float]:  # type: ignore[no-untyped-def]
    action()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="make the run here and keep it (a new folder)")
    parser.add_argument("--versions", type=int, default=Size.versions, help="versions in the run (50)")
    parser.add_argument("--problems", type=int, default=Size.selection + Size.holdout, help="problems (100)")
    args = parser.parse_args()
    holdout = max(1, args.problems // 10)
    calls = Size.calls * args.versions * args.problems // (Size.versions * (Size.selection + Size.holdout))
    size = Size(args.versions, args.problems - holdout, holdout, max(calls, 200), Size.events)
    home = args.keep or Path(tempfile.mkdtemp(prefix="viewer-bench-"))
    try:
        made = time.perf_counter()
        folder, attempt = make_run(home, size)
        print(
            f"made a run of {size.versions} versions × {size.selection + size.holdout} problems, "
            f"{size.calls} ledger calls, an attempt of {size.events} events "
            f"in {time.perf_counter() - made:.0f} s: {folder}"
        )
        client = TestClient(create_app(Sources(home / "runs", home / "evals", home / "solves"), UtilitySettings()))

        def report() -> None:
            with Run.open(folder, read_only=True) as run:
                render_html(gather_report(run, UtilitySettings()))

        pages = {
            "runs list, first visit": "/",
            "runs list": "/",
            "run": "/runs/big",
            f"version ({size.selection + size.holdout} results)": f"/runs/big/versions/{size.versions - 1}",
            "version, filtered": f"/runs/big/versions/{size.versions - 1}?status=failed",
            "attempt (2000 events, page 1)": f"/attempts/evals/{attempt}?run=big",
            "attempt, events page 10": f"/attempts/evals/{attempt}?run=big&start=1800",
            "meta step": "/attempts/runs/big/meta/iteration-1",
            "evaluations list": "/evals",
        }
        checks = {
            f"/attempts/evals/{attempt}?run=big": ("<tr>", 1 + 200 + 1 + 20),
            f"/runs/big/versions/{size.versions - 1}": (
                'href="/attempts/evals/',
                min(100, size.selection + size.holdout),
            ),
        }
        for path, (needle, least) in checks.items():
            found = client.get(path).text.count(needle)
            assert found >= least, f"{path}: {found} of {needle!r}, expected at least {least}"
        assert "has 100 calls" in client.get(f"/attempts/evals/{attempt}?run=big").text
        baseline = timed(report, args.repeats)
        print(
            f"\n{'page':32} {'median ms':>10} {'slowest ms':>11} {'target ms':>10}  result   baseline: "
            "`sica report` gather + HTML"
        )
        failed = 0
        for name, path in pages.items():

            def get(path: str = path, cold: bool = "first visit" in name) -> None:
                if cold:  # the list reads a run again only when its database changed: forget it has read it
                    runs._standing.clear()
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code, response.text[:300])

            times = timed(get, args.repeats)
            ok = max(times) < TARGET_S
            failed += not ok
            side = f"{statistics.median(baseline) * 1000:8.0f} ms" if name == "run" else ""
            print(
                f"{name:32} {statistics.median(times) * 1000:10.0f} {max(times) * 1000:11.0f} "
                f"{TARGET_S * 1000:10.0f}  {'PASS' if ok else 'FAIL':7}  {side}"
            )
        print(f"\n{len(pages) - failed} of {len(pages)} pages under {TARGET_S:.0f} s")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
