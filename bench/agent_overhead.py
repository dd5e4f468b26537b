#!/usr/bin/env python
"""Per-step framework overhead of the seed agent (sica_agent) against mini-swe-agent 2.4.6, and its prompt caching.

Both agents run the same trajectory: `--steps` steps that each run the shell command `--command` (`true`), then
one step that finishes (sica: the `complete` tool; mini-swe-agent: `echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT`).
The model answers at once, from a script:

* sica, in this process: the real `Agent` loop and `Runtime` (`build_runtime`, `run_top_agent`, the SOLVER kind,
  events written to a temporary logdir), with a zero-latency scripted model behind the real HTTP client through
  `httpx.MockTransport`, as agent/tests/scripted.py does. Native OpenAI tool calls (`run` {"command": "true"}) and
  text mode (tool_mode="text", one JSON object a reply). For information, also native mode with the model client
  replaced by a stub that returns ready-made replies (no request is built or serialized), which is what
  mini-swe-agent's test models amount to.
* mini-swe-agent 2.4.6, in a subprocess with its own venv (created once with `uv venv` + `uv pip install` under
  ~/.cache/sica/bench/mini-swe-agent-2.4.6, the only network traffic of this benchmark): `DefaultAgent` +
  `LocalEnvironment`, with the prompts of its own configs, driven by `DeterministicToolcallModel` (mini.yaml, tool
  calls, paired with sica native) and `DeterministicModel` (mini_textbased.yaml, bash blocks in the text, paired
  with sica text). Those two run as `DefaultAgent` does by default, without a trajectory file, although sica writes
  its events; for information, tool-call mode also runs writing its trajectory file each step, as the `mini` command
  does.

A step is the time from one model request to the next: reading the reply, running the command, recording it,
building the next request. The shell command's own time is measured inside each framework (around sica's
`tools.shell.run_command` and mini-swe-agent's `environments.local._run`) and subtracted: the rest is the framework's
overhead. sica and mini-swe-agent runs alternate (ABBA), after one warm-up run each; the figures are the median over
`--repeats` runs of each run's mean.

Prompt tokens: the warm-up runs record every request (sica: the body the MockTransport receives; mini-swe-agent:
the messages its model receives, without their "extra" keys, as its litellm models send them, plus its bash tool
definition in tool-call mode). A request is its tool definitions, then its messages (system first); each is counted
as its compact JSON in UTF-8 bytes / 4 tokens. The cacheable share of request k+1 is the tokens of its leading items
equal to request k's leading items (item by item), over its tokens: what a provider's prefix cache can reuse.

Targets: sica's overhead per step <= mini-swe-agent's; cacheable share >= 90% of prompt tokens (mean over the
requests after the first). Each gets PASS or FAIL; the exit status is 0 either way (2 if it could not run).

    .venv/bin/python bench/agent_overhead.py                  # the default run, well under a minute once installed
    .venv/bin/python bench/agent_overhead.py --steps 30 --repeats 9 --json out.json
    .venv/bin/python bench/agent_overhead.py --profile        # also cProfile sica's native steps
"""

from __future__ import annotations

import argparse
import cProfile
import contextlib
import dataclasses
import io
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "agent"))

import httpx  # noqa: E402

from sica_agent.agent import AgentKind, Runtime  # noqa: E402
from sica_agent.kinds import SOLVER  # noqa: E402
from sica_agent.llm import ModelClient, ModelReply  # noqa: E402
from sica_agent.run import build_runtime, run_top_agent  # noqa: E402
from sica_agent.settings import ModelRole, Settings  # noqa: E402
from sica_agent.tools import shell as sica_shell  # noqa: E402
from sica_agent.tools.base import ToolContext  # noqa: E402

MINI_VERSION = "2.4.6"
MINI_SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
BYTES_PER_TOKEN = 4
TARGET_OVERHEAD_RATIO = 1.0  # sica's overhead per step / mini-swe-agent's
TARGET_CACHEABLE = 0.90
THOUGHT = "Run the command."

# (label, sica variant, its mini-swe-agent counterpart) for the target rows
PAIRS = (("native tool calls", "sica native", "mini toolcall"), ("text mode", "sica text", "mini text"))
STUB = "sica native, stub model"
MINI_FILE = "mini toolcall, traj. file"
SICA_VARIANTS = ("sica native", "sica text", STUB)
MINI_VARIANTS = ("mini toolcall", "mini text", MINI_FILE)
INFO_ROWS = ((STUB, "mini toolcall"), (MINI_FILE, None))  # (variant, compared with) shown for information


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def task_text(steps: int, command: str) -> str:
    return f"Run the shell command `{command}` {steps} times, one command per step, then finish."


# ---------------------------------------------------------------------------------------------------------------
# mini-swe-agent: its venv, and a driver that runs in it
# ---------------------------------------------------------------------------------------------------------------

MINI_DRIVER = r'''
"""Runs mini-swe-agent on a scripted trajectory; one JSON request a line on stdin, one JSON answer a line back."""
import json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path

out = os.fdopen(os.dup(1), "w")  # answers go to the real stdout; whatever else prints goes to stderr
os.dup2(2, 1)

import minisweagent
from minisweagent.agents.default import DefaultAgent
from minisweagent.config import get_config_from_spec
from minisweagent.environments import local
from minisweagent.environments.local import LocalEnvironment
from minisweagent.models.test_models import (DeterministicModel, DeterministicToolcallModel, make_output,
                                             make_toolcall_output)
from minisweagent.models.utils.actions_toolcall import BASH_TOOL

SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
original_run = local._run
shell_seconds = []


def timed_run(*args, **kwargs):
    started = time.perf_counter()
    try:
        return original_run(*args, **kwargs)
    finally:
        shell_seconds.append(time.perf_counter() - started)


local._run = timed_run


def outputs(mode, steps, command, thought):
    commands = [command] * steps + [SUBMIT]
    if mode == "toolcall":
        result = []
        for k, cmd in enumerate(commands, 1):
            call = {"id": f"call_{k}", "type": "function",
                    "function": {"name": "bash", "arguments": json.dumps({"command": cmd})}}
            message = make_toolcall_output(None, [call], [{"command": cmd, "tool_call_id": f"call_{k}"}])
            message["extra"]["cost"] = 0.0
            result.append(message)
        return result
    return [make_output(f"THOUGHT: {thought}\n\n```mswea_bash_command\n{cmd}\n```", [{"command": cmd}], cost=0.0)
            for cmd in commands]


def run(req):
    mode, steps = req["mode"], req["steps"]
    config = get_config_from_spec("mini.yaml" if mode == "toolcall" else "mini_textbased.yaml")
    agent_config = {key: config["agent"][key] for key in ("system_template", "instance_template")}
    agent_config.update(step_limit=0, cost_limit=0)
    if req["trajectory"]:
        agent_config["output_path"] = Path(req["tmpdir"]) / "last_mini_run.traj.json"
    model_class = DeterministicToolcallModel if mode == "toolcall" else DeterministicModel
    model = model_class(outputs=outputs(mode, steps, req["command"], req["thought"]), cost_per_call=0.0,
                        observation_template=config["model"]["observation_template"])
    env = LocalEnvironment(cwd=req["workdir"], **config.get("environment", {}))
    calls, prompts = [], []
    query = model.query

    def timed_query(messages, **kwargs):
        calls.append(time.perf_counter())
        if req["capture"]:
            prompts.append(json.dumps([{k: v for k, v in m.items() if k != "extra"} for m in messages]))
        return query(messages, **kwargs)

    model.query = timed_query
    shell_seconds.clear()
    started = time.perf_counter()
    agent = DefaultAgent(model, env, **agent_config)
    result = agent.run(req["task"])
    total = time.perf_counter() - started
    if result.get("exit_status") != "Submitted" or len(calls) != steps + 1:
        raise RuntimeError(f"mini-swe-agent ended with {result.get('exit_status')!r} after {len(calls)} calls")
    answer = {"intervals": [b - a for a, b in zip(calls, calls[1:])], "shell": shell_seconds[:steps],
              "total": total}
    if req["capture"]:
        answer["prompts"] = [json.loads(p) for p in prompts]
        answer["tools"] = [BASH_TOOL] if mode == "toolcall" else []
    return answer


def baseline(req):
    env = os.environ | get_config_from_spec("mini.yaml").get("environment", {}).get("env", {})
    times = []
    for _ in range(req["n"]):
        started = time.perf_counter()
        original_run(req["command"], req["workdir"], env, 30)
        times.append(time.perf_counter() - started)
    return {"median": statistics.median(times)}


print(json.dumps({"ready": True, "version": minisweagent.__version__, "python": sys.version.split()[0]}),
      file=out, flush=True)
for line in sys.stdin:
    req = json.loads(line)
    try:
        answer = run(req) if req["op"] == "run" else baseline(req)
    except Exception as error:
        answer = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(answer), file=out, flush=True)
'''


def mini_venv_dir(override: str | None) -> Path:
    if override:
        return Path(override)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "sica" / "bench" / f"mini-swe-agent-{MINI_VERSION}"


def ensure_mini_venv(venv: Path) -> Path:
    """The venv's python, after creating it and installing mini-swe-agent if not done yet (the one network use)."""
    python = venv / "bin" / "python"
    stamp = venv / ".sica-bench-installed"
    if stamp.is_file() and python.exists():
        return python
    uv = shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")
    base = getattr(sys, "_base_executable", None) or sys.executable  # the same CPython as this process
    say(f"installing mini-swe-agent {MINI_VERSION} into {venv} (once)")
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([uv, "venv", "--quiet", "--python", base, str(venv)], check=True)
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), f"mini-swe-agent=={MINI_VERSION}"],
                   check=True)
    stamp.write_text(f"mini-swe-agent=={MINI_VERSION}\n")
    return python


class MiniDriver:
    """The driver process in mini-swe-agent's venv; `ask` sends one request and returns its answer."""

    def __init__(self, python: Path, tmpdir: Path) -> None:
        script = tmpdir / "mini_driver.py"
        script.write_text(MINI_DRIVER)
        config_dir = tmpdir / "mini-config"
        config_dir.mkdir()
        env = {**os.environ, "MSWEA_SILENT_STARTUP": "1", "MSWEA_GLOBAL_CONFIG_DIR": str(config_dir)}
        env.pop("PYTHONPATH", None)
        self.stderr = (tmpdir / "mini_driver.log").open("w")
        self.proc = subprocess.Popen([str(python), str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, env=env, cwd=tmpdir)
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.stderr.flush()
            log = Path(self.stderr.name).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the mini-swe-agent driver exited with status {self.proc.returncode}:\n{log}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"mini-swe-agent driver: {answer['error']}")
        return answer

    def ask(self, **request: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


# ---------------------------------------------------------------------------------------------------------------
# sica: the real runtime with a scripted model
# ---------------------------------------------------------------------------------------------------------------

def openai_replies(steps: int, command: str, text_mode: bool) -> list[bytes]:
    """The model's replies in OpenAI chat-completion format: `steps` runs of `command`, then complete."""
    calls = [("run", {"command": command})] * steps + [("complete", {"summary": f"Ran `{command}` {steps} times."})]
    replies = []
    for k, (name, arguments) in enumerate(calls, 1):
        if text_mode:
            message: dict[str, Any] = {"role": "assistant", "content": json.dumps(
                {"thought": THOUGHT, "tool": name, "arguments": arguments})}
        else:
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call_{k}", "type": "function",
                 "function": {"name": name, "arguments": json.dumps(arguments)}}]}
        replies.append(json.dumps({
            "id": f"chatcmpl-{k}", "object": "chat.completion", "model": "scripted",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop" if text_mode else "tool_calls"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0}}).encode())
    return replies


class StubModel:
    """A model client that skips HTTP and JSON: hands back ready-made replies, like mini-swe-agent's test models."""

    def __init__(self, steps: int, command: str, calls: list[float]) -> None:
        self.calls = calls
        self.replies = []
        for k, body in enumerate(openai_replies(steps, command, text_mode=False), 1):
            message = json.loads(body)["choices"][0]["message"]
            kept = {"role": "assistant", "content": "", "tool_calls": message["tool_calls"]}
            self.replies.append(ModelReply("", kept, message["tool_calls"], 0, 0, 0, "tool_calls"))

    def chat(self, role: ModelRole, system: str, messages: list[dict[str, Any]], **options: Any) -> ModelReply:
        self.calls.append(time.perf_counter())
        return self.replies[len(self.calls) - 1]


@contextlib.contextmanager
def timed_sica_shell(seconds: list[float]) -> Iterator[None]:
    """Time sica's shell commands (RunTool.run calls the module's `run_command`)."""
    original = sica_shell.run_command

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)

    sica_shell.run_command = timed  # type: ignore[assignment]
    try:
        yield
    finally:
        sica_shell.run_command = original  # type: ignore[assignment]


def sica_run(variant: str, steps: int, command: str, workdir: Path, tmpdir: Path, capture: bool,
             profiler: cProfile.Profile | None = None) -> dict[str, Any]:
    text_mode = variant == "sica text"
    role = ModelRole("scripted", "openai", "text" if text_mode else "native", 32768)
    settings = Settings(gateway="http://gateway.invalid", token="bench-token", models={"main": role, "reasoning": role},
                        run_id="bench", problem_id="bench", time_limit_s=3600, cost_limit_usd=None)
    kind: AgentKind = dataclasses.replace(SOLVER, max_steps=max(SOLVER.max_steps, steps + 1))
    logdir = Path(tempfile.mkdtemp(prefix="log-", dir=tmpdir))
    runtime: Runtime = build_runtime(settings, logdir)
    runtime.model._http.close()  # the gateway client build_runtime made; the scripted model replaces it
    calls: list[float] = []
    bodies: list[bytes] = []
    if variant == STUB:
        runtime.model = StubModel(steps, command, calls)  # type: ignore[assignment]
    else:
        responses = [httpx.Response(200, content=body, headers={"content-type": "application/json"})
                     for body in openai_replies(steps, command, text_mode)]

        def handle(request: httpx.Request) -> httpx.Response:
            calls.append(time.perf_counter())
            if capture:
                bodies.append(request.content)
            return responses[len(calls) - 1]

        runtime.model = ModelClient(httpx.Client(transport=httpx.MockTransport(handle),
                                                 base_url="http://gateway.invalid"))
    shell_seconds: list[float] = []
    with timed_sica_shell(shell_seconds):
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        result = run_top_agent(kind, runtime, ToolContext(workdir), task_text(steps, command))
        if profiler:
            profiler.disable()
        total = time.perf_counter() - started
    if result.status != "done" or len(calls) != steps + 1 or len(shell_seconds) != steps:
        raise RuntimeError(f"{variant} ended with {result.status!r} after {len(calls)} model calls and "
                           f"{len(shell_seconds)} commands: {result.summary}")
    answer: dict[str, Any] = {"intervals": [b - a for a, b in zip(calls, calls[1:])], "shell": shell_seconds,
                              "total": total, "events": sum(1 for _ in (logdir / "events.jsonl").open())}
    if bodies:
        parsed = [json.loads(body) for body in bodies]
        answer["prompts"] = [body["messages"] for body in parsed]
        answer["tools"] = parsed[0].get("tools") or []
    shutil.rmtree(logdir, ignore_errors=True)
    return answer


def sica_shell_baseline(command: str, workdir: Path, n: int) -> float:
    """A bare `bash -c COMMAND` with the flags sica's run_command uses, outside the agent."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        sica_shell.run_command(command, ToolContext(workdir), 60)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------------------------

def step_figures(run: dict[str, Any], steps: int) -> dict[str, float]:
    """One run's per-step means (ms): wall, shell command, overhead (wall minus shell), and the overhead's p90."""
    intervals, shell = run["intervals"], run["shell"]
    overheads = sorted(i - s for i, s in zip(intervals, shell))
    return {"step_ms": 1000 * statistics.fmean(intervals), "shell_ms": 1000 * statistics.fmean(shell),
            "overhead_ms": 1000 * statistics.fmean(overheads),
            "overhead_p90_ms": 1000 * overheads[min(len(overheads) - 1, int(0.9 * len(overheads)))],
            "run_per_step_ms": 1000 * run["total"] / (steps + 1)}


def median_figures(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def tokens(item: Any) -> float:
    return len(json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()) / BYTES_PER_TOKEN


def prompt_figures(prompts: list[list[dict[str, Any]]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Prompt tokens per request and the share of each that repeats the previous request as a prefix."""
    requests = [([{"tools": tools}] if tools else []) + messages for messages in prompts]
    sizes = [[tokens(item) for item in request] for request in requests]
    totals = [sum(size) for size in sizes]
    shares, new_tokens = [], []
    for k in range(1, len(requests)):
        common = 0
        for previous, item in zip(requests[k - 1], requests[k]):
            if previous != item:
                break
            common += 1
        cached = sum(sizes[k][:common])
        shares.append(cached / totals[k])
        new_tokens.append(totals[k] - cached)
    return {"requests": len(requests), "first": totals[0], "last": totals[-1], "mean": statistics.fmean(totals),
            "total": sum(totals), "tools": tokens(tools) if tools else 0.0,
            "mean_new_per_request": statistics.fmean(new_tokens) if new_tokens else 0.0,
            "cacheable_mean": statistics.fmean(shares) if shares else 0.0,
            "cacheable_min": min(shares) if shares else 0.0, "per_request_tokens": totals,
            "per_request_cacheable": shares}


# ---------------------------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------------------------

def run_benchmark(args: argparse.Namespace, tmpdir: Path, mini: MiniDriver | None) -> dict[str, Any]:
    workdir = tmpdir / "work"
    workdir.mkdir()
    (workdir / "README.md").write_text("A scratch directory for the agent-overhead benchmark.\n")
    task = task_text(args.steps, args.command)
    sica_variants = list(SICA_VARIANTS)
    mini_variants = list(MINI_VARIANTS) if mini else []

    def run_one(variant: str, capture: bool) -> dict[str, Any]:
        if variant.startswith("sica"):
            return sica_run(variant, args.steps, args.command, workdir, tmpdir, capture)
        assert mini is not None
        answer = mini.ask(op="run", mode=variant.split()[1], steps=args.steps, command=args.command,
                          workdir=str(workdir), tmpdir=str(tmpdir), task=task, thought=THOUGHT, capture=capture,
                          trajectory=variant == MINI_FILE)
        if "error" in answer:
            raise RuntimeError(f"{variant}: {answer['error']}")
        return answer

    # one order of the variants, reversed every other round (ABBA), sica and mini alternating
    order = [v for pair in zip(sica_variants, mini_variants or [None] * len(sica_variants)) for v in pair if v]
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in order}
    prompts: dict[str, dict[str, Any]] = {}
    for round_ in range(args.repeats + 1):
        for variant in order if round_ % 2 == 0 else reversed(order):
            answer = run_one(variant, capture=round_ == 0)
            if round_ == 0:  # the warm-up: not timed, records the prompts
                if "prompts" in answer and variant not in (STUB, MINI_FILE):
                    prompts[variant] = prompt_figures(answer["prompts"], answer["tools"])
                continue
            runs[variant].append(step_figures(answer, args.steps))
    baselines = {"sica: bash -c (run_command)": 1000 * sica_shell_baseline(args.command, workdir, args.baseline_n)}
    if mini:
        baselines["mini: sh -c (local._run)"] = 1000 * mini.ask(op="baseline", n=args.baseline_n,
                                                                  command=args.command, workdir=str(workdir))["median"]
    return {"steps": {v: median_figures(r) for v, r in runs.items()}, "runs": runs, "prompts": prompts,
            "baselines_ms": baselines}


def target_checks(results: dict[str, Any]) -> dict[str, bool | None]:
    steps, prompts = results["steps"], results["prompts"]
    checks: dict[str, bool | None] = {}
    for label, sica, mini in PAIRS:
        checks[f"overhead, {label}"] = (steps[sica]["overhead_ms"] <= TARGET_OVERHEAD_RATIO * steps[mini]["overhead_ms"]
                                        if mini in steps else None)
    for variant in ("sica native", "sica text"):
        checks[f"cacheable, {variant}"] = prompts[variant]["cacheable_mean"] >= TARGET_CACHEABLE
    return checks


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for i, cells in enumerate([header, *rows]):
        print("  ".join(cell.ljust(widths[k]) if k == 0 else cell.rjust(widths[k])
                        for k, cell in enumerate(cells)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def verdict(passed: bool | None) -> str:
    return "n/a" if passed is None else "PASS" if passed else "FAIL"


def print_report(args: argparse.Namespace, results: dict[str, Any], mini_info: dict[str, Any] | None) -> None:
    steps, prompts = results["steps"], results["prompts"]
    checks = target_checks(results)
    print()
    print(f"agent overhead: {args.steps} steps of `{args.command}`, then finish; zero-latency scripted model; "
          f"median of {args.repeats} runs per agent after 1 warm-up, sica and mini-swe-agent alternated")
    mini_text = (f"mini-swe-agent {mini_info['version']} (Python {mini_info['python']}, own venv, subprocess)"
                 if mini_info else "mini-swe-agent: not run")
    print(f"sica_agent in-process (Python {platform.python_version()}, events to a temp logdir); {mini_text}; "
          f"{os.cpu_count()} CPUs")
    print()
    print("Per step (ms; a step = one model request to the next; overhead = step minus the shell command's own time)")
    header = ("", "step", "shell cmd", "overhead", "overhead p90", "run/step", "sica/mini", "target", "result")
    rows = []
    for label, sica, mini in PAIRS:
        for variant in (sica, mini):
            if variant not in steps:
                continue
            f = steps[variant]
            ratio = target = result = ""
            if variant == sica:
                target = f"<= {TARGET_OVERHEAD_RATIO:g}x mini"
                result = verdict(checks[f"overhead, {label}"])
                if mini in steps:
                    ratio = f"{f['overhead_ms'] / steps[mini]['overhead_ms']:.2f}"
            rows.append((variant, f"{f['step_ms']:.3f}", f"{f['shell_ms']:.3f}", f"{f['overhead_ms']:.3f}",
                         f"{f['overhead_p90_ms']:.3f}", f"{f['run_per_step_ms']:.3f}", ratio, target, result))
    for variant, versus in INFO_ROWS:
        if variant not in steps:
            continue
        f = steps[variant]
        ratio = f"{f['overhead_ms'] / steps[versus]['overhead_ms']:.2f}" if versus in steps else ""
        rows.append((variant, f"{f['step_ms']:.3f}", f"{f['shell_ms']:.3f}", f"{f['overhead_ms']:.3f}",
                     f"{f['overhead_p90_ms']:.3f}", f"{f['run_per_step_ms']:.3f}", ratio, "(info)", ""))
    print_table(header, rows)
    print("run/step: the whole run (agent set-up and the finishing step included) / (steps + 1); shell cmd: sica runs "
          "bash -c, mini-swe-agent sh -c")
    print(f"{STUB}: sica's model client replaced by one returning ready-made replies (no request built), like "
          f"mini-swe-agent's test models; {MINI_FILE}: mini-swe-agent also writing its trajectory file each step, as "
          "the mini command does")
    print("bare shell command, median of " + str(args.baseline_n) + ": " +
          ", ".join(f"{name} {ms:.3f} ms" for name, ms in results["baselines_ms"].items()))
    print()
    print(f"Prompt tokens on the same trajectory (estimate: compact JSON, UTF-8 bytes / {BYTES_PER_TOKEN}; "
          "a request = tool definitions + messages; cacheable = leading items equal to the previous request's)")
    header = ("", "requests", "tools", "first", "last", "mean", "total", "new/req", "cacheable", "min", "target",
              "result")
    rows = []
    for variant in ("sica native", "mini toolcall", "sica text", "mini text"):
        if variant not in prompts:
            continue
        p = prompts[variant]
        sica_row = variant.startswith("sica")
        rows.append((variant, str(p["requests"]), f"{p['tools']:.0f}", f"{p['first']:.0f}", f"{p['last']:.0f}",
                     f"{p['mean']:.0f}", f"{p['total']:.0f}", f"{p['mean_new_per_request']:.0f}",
                     f"{100 * p['cacheable_mean']:.1f}%", f"{100 * p['cacheable_min']:.1f}%",
                     f">= {100 * TARGET_CACHEABLE:.0f}%" if sica_row else "",
                     verdict(checks[f"cacheable, {variant}"]) if sica_row else ""))
    print_table(header, rows)
    print("cacheable: mean over the requests after the first (min: the lowest); new/req: tokens not in that prefix")
    print("the same command each step: sica adds its repeated-call note to every result after the first (part of its "
          "new/req)")
    print()
    decided = [passed for passed in checks.values() if passed is not None]
    overall = "PASS" if decided and all(decided) and None not in checks.values() else \
        "FAIL" if not all(decided) else "INCOMPLETE"
    print(f"overall: {overall} (a benchmark: the exit status is 0 either way)")


def profile_sica(args: argparse.Namespace, tmpdir: Path) -> None:
    """cProfile a few native runs of sica and print where the time goes (cumulative, then own time)."""
    workdir = tmpdir / "work"
    profiler = cProfile.Profile()
    for _ in range(3):
        sica_run("sica native", args.steps, args.command, workdir, tmpdir, capture=False, profiler=profiler)
    for sort in ("cumulative", "tottime"):
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats(sort).print_stats(args.profile_lines)
        print(f"\ncProfile of 3 runs of sica native ({3 * (args.steps + 1)} steps), by {sort}:")
        print("\n".join(line for line in text.getvalue().splitlines()[5:] if line.strip()))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=50, help="steps running the command, before the finishing one")
    parser.add_argument("--repeats", type=int, default=7, help="measured runs per agent variant, after 1 warm-up")
    parser.add_argument("--command", default="true", help="the trivial shell command each step runs")
    parser.add_argument("--baseline-n", type=int, default=100, help="bare shell commands timed for the baseline")
    parser.add_argument("--no-mini", action="store_true", help="run sica only")
    parser.add_argument("--mini-venv", metavar="DIR", help="mini-swe-agent's venv (default: under ~/.cache/sica)")
    parser.add_argument("--profile", action="store_true", help="also cProfile sica's native runs")
    parser.add_argument("--profile-lines", type=int, default=25, help="lines of each cProfile listing")
    parser.add_argument("--json", metavar="PATH", help="also write all figures as JSON")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    mini: MiniDriver | None = None
    with tempfile.TemporaryDirectory(prefix="sica-agent-bench-") as tmp:
        tmpdir = Path(tmp)
        try:
            if not args.no_mini:
                mini = MiniDriver(ensure_mini_venv(mini_venv_dir(args.mini_venv)), tmpdir)
            results = run_benchmark(args, tmpdir, mini)
        except Exception as exc:  # noqa: BLE001 - a benchmark that cannot run says why and exits 2
            say(f"benchmark could not run: {type(exc).__name__}: {exc}")
            if mini:
                mini.stderr.flush()
                with contextlib.suppress(OSError):
                    say(Path(mini.stderr.name).read_text(errors="replace")[-3000:])
            return 2
        finally:
            mini_info = mini.info if mini else None
            if mini:
                mini.close()
        print_report(args, results, mini_info)
        if args.profile:
            profile_sica(args, tmpdir)
    print(f"wall time: {time.monotonic() - started:.1f} s")
    if args.json:
        targets = {"overhead_ratio_max": TARGET_OVERHEAD_RATIO, "cacheable_min": TARGET_CACHEABLE,
                   "bytes_per_token": BYTES_PER_TOKEN}
        Path(args.json).write_text(json.dumps({"args": vars(args), "mini": mini_info, "results": results,
                                               "targets": targets, "passed": target_checks(results)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
