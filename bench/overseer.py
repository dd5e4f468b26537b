#!/usr/bin/env python
"""What the overseer saves on looping runs and what it costs on healthy ones, each run side by side with the
overseer off, and (with `--real N`) what it does to real `sica eval` runs of the built-in HumanEval.

Scripted part. The agent is agent 0 in the real bwrap sandbox, its model the gateway's scripted upstream replaying
a trajectory with a fixed latency a call; the overseer's model is the real bundled local model (`--model`, 0.5b by
default), served by llama.cpp on loopback and reached through the gateway on the overseer's own account, as in
any attempt. Every scenario is one `run_eval` of one task folder (fresh, no cached results), once with no overseer
role and once with `[roles] overseer` naming the local model (`[overseer] interval_s` `--interval-s`, 10 s, so the
healthy runs get several reviews; everything else as configured by default: a cancel needs a detector's finding):

* looping scenarios, one per stuck pattern of the field (60 steps, `--loop-latency-s` 0.5 s a call, the seed's step
  limit): the same view and result (`repeat`), the same failing view (`error`), two actions alternating
  (`alternate`), replies with no tool call (`talk`), and three commands cycling with nothing new (`stall`);
* healthy scenarios (`--healthy-latency-s` 2 s a call): a bug fixed in 18 varied steps (`fix`: look, test, edit,
  test, notes, complete) and a small module written in 16 steps (`build`); both solve their task.

Figures, per mode: status, wall seconds of the attempt, the agent's tokens and the overseer's. Tokens are counted
the same way for both models from the gateway's ledger (the stored request body's bytes / 4, plus the output
tokens the call reported), since the scripted upstream's usage is made up. Looping: tokens and seconds saved
(off minus on) and their ratio. Healthy: the share of runs the overseer interrupted (cancelled, or its sandbox
ended; target 0), the notifications it sent (for information), and its tokens as a share of the agent's (target
<= 10%; at equal prices per token this is its cost share too).

Real part (`--real N`): `sica eval -b humaneval:N` with the local model as both the agent's model and the
overseer's (one llama.cpp server, two slots), overseer off then on: score, seconds, and how often the overseer
stepped in (notifications, cancels, withheld cancels). Slow: minutes per problem on 2 cores with the 1.5B model.

    .venv/bin/python bench/overseer.py                         # scripted scenarios, 0.5B overseer (~10 min)
    .venv/bin/python bench/overseer.py --model 1.5b --real 4   # also four HumanEval problems, 1.5B throughout
    .venv/bin/python bench/overseer.py --only repeat fix       # some scenarios only
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uv

from sica.bundled_models import resolve_model
from sica.config import load_settings
from sica.local_model.server import LocalModelServer, ServeOptions
from sica.local_model.weights import default_cache_dir, install
from sica.runner.environments import seed_agent_dir
from sica.runner.evaluate import EvalConfig, EvalRequest, run_eval
from sica.runner.setup import serve_gateway

Step = dict[str, Any]


def tool(name: str, **arguments: Any) -> Step:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


BUGGY = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
TESTS = "from calc import add, mul\n\nassert add(2, 3) == 5\nassert mul(2, 3) == 6\nprint('tests pass')\n"
LOOPING: dict[str, list[Step]] = {
    "repeat": [tool("view", path="README")] * 60,
    "error": [tool("view", path="missing.txt")] * 60,
    "alternate": [tool("view", path="README"), tool("run", command="cat README")] * 30,
    "talk": [{"content": "Let me think about how to approach this task before acting."}] * 60,
    "stall": [tool("run", command="ls"), tool("run", command="pwd"), tool("run", command="cat README")] * 20,
}
HEALTHY: dict[str, list[Step]] = {
    "fix": [
        tool("tree", path="."),
        tool("view", path="README"),
        tool("view", path="calc.py"),
        tool("view", path="test_calc.py"),
        tool("run", command="python3 test_calc.py"),
        tool("run", command="grep -n 'def add' calc.py"),
        tool("replace", path="calc.py", old="return a - b", new="return a + b"),
        tool("run", command="python3 test_calc.py"),
        tool("view", path="calc.py"),
        tool("run", command="python3 -c 'import calc; print(calc.add(-1, 1))'"),
        tool("create", path="NOTES.md", content="add subtracted instead of adding; fixed.\n"),
        tool("view", path="NOTES.md"),
        tool("insert", path="calc.py", line=0, text='"""Small arithmetic helpers."""\n'),
        tool("run", command="python3 test_calc.py && python3 -m py_compile calc.py && echo compiled"),
        tool("run", command="ls -la"),
        tool("view", path="calc.py"),
        tool("run", command="python3 -c 'import calc; print(calc.mul(4, 5))'"),
        tool("complete", summary="fixed add in calc.py; the tests pass"),
    ],
    "build": [
        tool("view", path="README"),
        tool("view", path="test_calc.py"),
        tool("create", path="calc.py", content="def add(a, b):\n    return a + b\n"),
        tool("run", command="python3 test_calc.py"),
        tool(
            "replace",
            path="calc.py",
            old="    return a + b\n",
            new="    return a + b\n\n\ndef mul(a, b):\n    return a * b\n",
        ),
        tool("run", command="python3 test_calc.py"),
        tool("view", path="calc.py"),
        tool("create", path="test_more.py", content="from calc import add\nassert add(-2, 2) == 0\n"),
        tool("run", command="python3 test_more.py && echo more-pass"),
        tool("tree", path="."),
        tool("run", command="python3 -m py_compile calc.py test_more.py && echo compiled"),
        tool("create", path="NOTES.md", content="calc.py written: add and mul.\n"),
        tool("run", command="wc -l calc.py"),
        tool("view", path="NOTES.md"),
        tool("run", command="python3 -c 'import calc; print(calc.add(1, 2), calc.mul(3, 4))'"),
        tool("complete", summary="wrote calc.py with add and mul; the tests pass"),
    ],
}


def write_task(root: Path, name: str) -> Path:
    """One task folder: fix (or write) calc.py so test_calc.py passes."""
    task = root / name
    (task / "files").mkdir(parents=True)
    (task / "task.md").write_text("Make `python3 test_calc.py` pass by fixing or writing calc.py.\n")
    (task / "files" / "README").write_text("calc: add and mul. Run python3 test_calc.py to test.\n")
    (task / "files" / "test_calc.py").write_text(TESTS)
    if name != "build":
        (task / "files" / "calc.py").write_text(BUGGY)
    (task / "build.sh").write_text('cp -r files/. "$1"\n')
    (task / "check.sh").write_text('cd "$1" && python3 test_calc.py\n')
    return task


def local_alias(server: LocalModelServer) -> str:
    return (
        f'[models.local]\nprovider = "openai_compatible"\nmodel = "{server.options.alias}"\n'
        f'base_url = "{server.base_url}"\nprice = "free"\ntool_mode = "text"\n'
        f"context_window = {server.options.context_per_slot}\n"
    )


@dataclass(frozen=True)
class Outcome:
    """One attempt as the bench counts it."""

    status: str
    score: float
    seconds: float
    agent_tokens: int
    overseer_tokens: int
    notifications: int
    cancels: int
    withheld: int
    overseer: str

    @property
    def interrupted(self) -> bool:
        return self.status == "cancelled" or "sandbox was ended" in self.overseer


def ledger_tokens(ledger: Path, *, overseer: bool) -> int:
    """Tokens of the ledger's calls made on the overseers' accounts (or, without `overseer`, on every other): the
    request body's bytes / 4 plus the output tokens the call reported."""
    with closing(sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)) as db:
        row = db.execute(
            "SELECT COALESCE(SUM(LENGTH(c.request_body)), 0), COALESCE(SUM(c.output_tokens), 0) FROM calls c"
            f" JOIN accounts a ON a.id = c.account_id WHERE a.name {'' if overseer else 'NOT '}LIKE 'overseer %'"
        ).fetchone()
    return int(row[0]) // 4 + int(row[1])


def actions_of(folder: Path) -> list[str]:
    path = folder / "overseer.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line["data"]["action"] for line in lines if line["type"] == "action"]


async def evaluate(home: Path, config: str, benchmark: str, agent_alias: str) -> list[Outcome]:
    """One fresh `run_eval` of `benchmark` in `home` with `config`; each problem's outcome."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "sica.toml").write_text(config)
    settings = load_settings(home / "sica.toml", {})
    request = EvalRequest(seed_agent_dir(), [benchmark], model=agent_alias, workers=1, fresh=True)
    report = await run_eval(
        EvalConfig.of(settings),
        request,
        lambda progress: None,
        asyncio.Event(),
        gateway=functools.partial(serve_gateway, settings, {}),
    )
    ledger = report.folder / "ledger.sqlite"
    outcomes = []
    for result in report.results:
        if result.infra:
            sys.exit(f"an infrastructure failure in {result.folder}: {result.details}")
        actions = actions_of(Path(result.folder))
        outcomes.append(
            Outcome(
                result.status,
                result.score,
                result.seconds,
                ledger_tokens(ledger, overseer=False),
                ledger_tokens(ledger, overseer=True),
                actions.count("notify"),
                actions.count("cancel"),
                actions.count("cancel_withheld"),
                result.overseer,
            )
        )
    return outcomes


def scripted_config(steps: list[Step], latency_s: float, overseer: bool, interval_s: float) -> tuple[str, str]:
    """The script of the agent's model and the `sica.toml` text (less the local model's alias)."""
    script = "".join(
        json.dumps({**step, "latency_s": latency_s, "usage": {"input": 1, "output": 20}}) + "\n" for step in steps
    )
    text = (
        '[models.fake]\nprovider = "scripted"\nmodel = "scripted"\nscript = "script.jsonl"\nprice = "free"\n\n'
        '[eval]\nresults_dir = "evals"\ninfra_retries = 0\ntime_limit_s = 300\n\n[solve]\ncancel_grace_s = 5\n\n'
        f"[overseer]\ninterval_s = {interval_s}\n\n"
    )
    return script, text + ('[roles]\nmain = "fake"\noverseer = "local"\n' if overseer else "")


def show(name: str, mode: str, outcome: Outcome) -> None:
    print(
        f"  {name:<10} {mode:<4} {outcome.status:<10} {outcome.score:>5.2f} {outcome.seconds:>7.1f} "
        f"{outcome.agent_tokens:>8} {outcome.overseer_tokens:>8} {outcome.notifications:>6} {outcome.cancels:>6} "
        f"{outcome.withheld:>8}  {outcome.overseer[:90]}"
    )


HEADER = (
    f"  {'scenario':<10} {'mode':<4} {'status':<10} {'score':>5} {'wall s':>7} {'agent tk':>8} "
    f"{'overs tk':>8} {'notify':>6} {'cancel':>6} {'withheld':>8}  overseer's line"
)


async def scripted_part(home: Path, server: LocalModelServer, args: argparse.Namespace) -> None:
    runs: dict[str, dict[str, Outcome]] = {}
    scenarios = [(name, steps, args.loop_latency_s, "looping") for name, steps in LOOPING.items()]
    scenarios += [(name, steps, args.healthy_latency_s, "healthy") for name, steps in HEALTHY.items()]
    print(f"scripted agents; overseer model {server.options.alias}; interval {args.interval_s:g} s")
    print(HEADER)
    for name, steps, latency, kind in scenarios:
        if args.only and name not in args.only:
            continue
        for mode in ("off", "on"):
            folder = home / f"{name}-{mode}"
            task = write_task(folder / "tasks", "build" if name == "build" else "task")
            script, config = scripted_config(steps, latency, mode == "on", args.interval_s)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "script.jsonl").write_text(script)
            (outcome,) = await evaluate(folder, config + local_alias(server), f"taskdir:{task.parent}", "fake")
            runs.setdefault(kind, {})[f"{name} {mode}"] = outcome
            show(name, mode, outcome)
    looping = runs.get("looping", {})
    names = sorted({key.split()[0] for key in looping})
    if names:
        off = [looping[f"{n} off"] for n in names]
        on = [looping[f"{n} on"] for n in names]
        tokens_off, tokens_on = sum(o.agent_tokens for o in off), sum(o.agent_tokens + o.overseer_tokens for o in on)
        seconds_off, seconds_on = sum(o.seconds for o in off), sum(o.seconds for o in on)
        print(
            f"looping ({len(names)} runs): tokens off {tokens_off}, on {tokens_on} (the overseer's included): "
            f"saved {tokens_off - tokens_on} ({1 - tokens_on / tokens_off:.0%}); seconds off {seconds_off:.0f}, "
            f"on {seconds_on:.0f}: saved {seconds_off - seconds_on:.0f} ({1 - seconds_on / seconds_off:.0%}); "
            f"cancelled {sum(o.status == 'cancelled' for o in on)} of {len(on)}"
        )
    healthy = [o for key, o in runs.get("healthy", {}).items() if key.endswith(" on")]
    if healthy:
        wrongly = sum(o.interrupted for o in healthy)
        share = sum(o.overseer_tokens for o in healthy) / max(1, sum(o.agent_tokens for o in healthy))
        notified = sum(o.notifications for o in healthy)
        print(
            f"healthy ({len(healthy)} runs): wrongly interrupted {wrongly} of {len(healthy)} "
            f"({'PASS' if wrongly == 0 else 'FAIL'}, target 0); notifications {notified};"
            f" overseer tokens {share:.1%} of the agent's ({'PASS' if share <= 0.10 else 'FAIL'}, target <= 10%)"
        )


async def real_part(home: Path, server: LocalModelServer, problems: int) -> None:
    print(f"\nsica eval -b humaneval:{problems}, {server.options.alias} as the agent's model and the overseer's")
    print(HEADER)
    totals: dict[str, list[Outcome]] = {}
    for mode in ("off", "on"):
        config = (
            '[eval]\nresults_dir = "evals"\ntime_limit_s = 600\n\n[roles]\nmain = "local"\n'
            + ('overseer = "local"\n' if mode == "on" else "")
            + "\n"
            + local_alias(server)
        )
        outcomes = await evaluate(home / f"real-{mode}", config, f"humaneval:{problems}", "local")
        totals[mode] = outcomes
        for index, outcome in enumerate(outcomes):
            show(f"problem {index}", mode, outcome)
    for mode, outcomes in totals.items():
        print(
            f"  {mode}: mean score {sum(o.score for o in outcomes) / len(outcomes):.2f}, "
            f"seconds {sum(o.seconds for o in outcomes):.0f}, stepped in on "
            f"{sum(bool(o.notifications or o.cancels) for o in outcomes)} of {len(outcomes)} "
            f"(notifications {sum(o.notifications for o in outcomes)}, cancels {sum(o.cancels for o in outcomes)},"
            f" withheld {sum(o.withheld for o in outcomes)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="0.5b", help="The bundled model that oversees (0.5b, 1.5b, ...).")
    parser.add_argument("--interval-s", type=float, default=10.0)
    parser.add_argument("--loop-latency-s", type=float, default=0.5)
    parser.add_argument("--healthy-latency-s", type=float, default=2.0)
    parser.add_argument("--only", nargs="*", default=[], help="Scenarios to run (default: all).")
    parser.add_argument("--real", type=int, default=0, metavar="N", help="Also N HumanEval problems, real model.")
    parser.add_argument("--no-scripted", action="store_true", help="Skip the scripted scenarios.")
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it (the runs' folders, ledgers).")
    args = parser.parse_args()
    model = resolve_model(args.model)
    path = install(model, default_cache_dir(), uv_bin=uv.find_uv_bin())
    with tempfile.TemporaryDirectory(prefix="sica-bench-overseer-") as scratch:
        home = args.keep.resolve() if args.keep else Path(scratch)
        options = ServeOptions(model_path=path, n_parallel=2, n_ctx=16384, alias=model.full_name)
        started = time.perf_counter()
        with LocalModelServer(options, home / "server.log", startup_timeout=120) as server:
            print(f"local model {model.full_name} up in {time.perf_counter() - started:.1f} s")
            if not args.no_scripted:
                asyncio.run(scripted_part(home, server, args))
            if args.real:
                asyncio.run(real_part(home, server, args.real))


if __name__ == "__main__":
    main()
