#!/usr/bin/env python
"""Problems per minute of `sica eval` at 1, 2, 4 and 8 workers, against the ideal.

The model is the gateway's scripted upstream with a fixed latency per call (`--latency-s`, 2 s) and a fixed
number of calls per problem (`--calls`, 5: `calls - 1` tool calls writing a file, then `complete`); the agent is
agent 0 in the real bwrap sandbox, and every problem is scored by its sandboxed check, as in a real evaluation.
Each width runs `3 × workers` task-folder problems (`--rounds` 3), fresh (no cached results), so the ideal wall
time is the same at every width: rounds × calls × latency. Ideal problems per minute = workers × 60 /
(calls × latency); measured = problems / wall time of `run_eval` (gateway start and stop included, the agent's
environment already built by a warm-up run). Target: at least 90% of ideal at 8 workers on 2 cores. The widest
width runs twice: with `[eval] stagger_s` as configured (the workers' first starts spread) and with 0 (all start
at once), side by side.

    .venv/bin/python bench/eval_throughput.py                    # about 3 minutes
    .venv/bin/python bench/eval_throughput.py --widths 1 8 --latency-s 1
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from sica.config import load_settings
from sica.runner.environments import seed_agent_dir
from sica.runner.evaluate import EvalConfig, EvalRequest, run_eval
from sica.runner.setup import serve_gateway


def write_tasks(root: Path, count: int) -> Path:
    """`count` task folders, each solved by writing done.txt."""
    for index in range(count):
        task = root / f"task-{index:02d}"
        task.mkdir(parents=True)
        (task / "task.md").write_text("Write 'ok' into done.txt.\n")
        (task / "build.sh").write_text('echo start > "$1/README"\n')
        (task / "check.sh").write_text('test "$(cat "$1/done.txt")" = ok\n')
    return root


def write_config(home: Path, calls: int, latency_s: float, stagger_s: float | None = None) -> Path:
    steps = [{"tool_calls": [{"name": "create", "arguments": {"path": "done.txt", "content": "ok\n"}}],
              "usage": {"input": 1000, "output": 20}, "latency_s": latency_s} for _ in range(calls - 1)]
    steps.append({"tool_calls": [{"name": "complete", "arguments": {"summary": "done"}}],
                  "usage": {"input": 1000, "output": 10}, "latency_s": latency_s})
    (home / "script.jsonl").write_text("".join(json.dumps(step) + "\n" for step in steps))
    config = home / ("sica.toml" if stagger_s is None else f"sica-stagger-{stagger_s:g}.toml")
    config.write_text('[models.fake]\nprovider = "scripted"\nmodel = "scripted"\nscript = "script.jsonl"\n'
                      'price = "free"\n\n[eval]\nresults_dir = "evals"\n'
                      + ("" if stagger_s is None else f"stagger_s = {stagger_s}\n"))
    return config


async def measure(config: Path, tasks: Path, workers: int) -> tuple[float, int]:
    settings = load_settings(config, {})
    request = EvalRequest(seed_agent_dir(), [f"taskdir:{tasks}"], workers=workers, fresh=True)
    started = time.perf_counter()
    gateway = functools.partial(serve_gateway, settings, {})
    report = await run_eval(EvalConfig.of(settings), request, lambda progress: None, asyncio.Event(), gateway=gateway)
    wall = time.perf_counter() - started
    solved = sum(r.score == 1.0 for r in report.results)
    if solved != len(report.results):
        sys.exit(f"only {solved} of {len(report.results)} problems solved: see {report.folder}")
    return wall, len(report.results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--latency-s", type=float, default=2.0)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sica-bench-eval-") as scratch:
        home = Path(scratch)
        config = write_config(home, args.calls, args.latency_s)
        asyncio.run(measure(config, write_tasks(home / "warmup", 1), 1))
        per_problem_s = args.calls * args.latency_s
        print(f"scripted model: {args.calls} calls of {args.latency_s:g} s a problem; {os.cpu_count()} cores")
        print(f"{'workers':>7} {'stagger':>9} {'problems':>8} {'wall s':>7} {'ideal s':>7} {'per min':>8} "
              f"{'ideal/min':>9} {'of ideal':>8}")
        unstaggered = write_config(home, args.calls, args.latency_s, stagger_s=0.0)
        runs = [(workers, config, "config") for workers in args.widths] + [(max(args.widths), unstaggered, "0 s")]
        for workers, settings_file, stagger in runs:
            count = args.rounds * workers
            tasks = write_tasks(home / f"w{workers}-{settings_file.stem}", count)
            wall, done = asyncio.run(measure(settings_file, tasks, workers))
            ideal_wall = args.rounds * per_problem_s
            rate, ideal_rate = done * 60 / wall, workers * 60 / per_problem_s
            print(f"{workers:>7} {stagger:>9} {done:>8} {wall:>7.1f} {ideal_wall:>7.1f} {rate:>8.1f} "
                  f"{ideal_rate:>9.1f} {rate / ideal_rate:>8.0%}")


if __name__ == "__main__":
    main()
