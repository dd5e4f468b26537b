#!/usr/bin/env python
"""Latency and throughput the sica gateway adds over calling a fixed-latency upstream directly.

Three processes, so that no two share a GIL or an event loop, all on 127.0.0.1:

* a fake OpenAI-compatible upstream (uvloop) that answers chat completions, plain or streamed, after a fixed
  delay (`--latency-ms`);
* the gateway, started with `sica.gateway.run_gateway` from a temporary `sica.toml` (one priced alias pointing at
  the fake) and ledger, with a two-level budgeted account tree, so every call is authenticated, reserved on both
  accounts, written to the ledger and settled. It runs on uvloop, as `sica gateway` does; `--gateway-loop asyncio`
  runs it on the stdlib loop, as the tests do;
* this process, the load generator (uvloop; a minimal keep-alive HTTP/1.1 client, or `--client httpx`).

Phases: (1) sequential latency, direct and via the gateway alternated request by request after a warm-up;
(2) throughput with `--concurrency` clients, rounds alternated in ABBA order; (3) sequential streamed latency.
The report puts direct and gateway side by side, with PASS/FAIL against the targets (added p50 <= 3 ms, added
p99 <= 15 ms, >= 300 req/s via the gateway), and checks the ledger against the requests sent. It exits 0 whether
the targets pass or not, 2 if it could not run.

    .venv/bin/python bench/gateway_overhead.py                       # under a minute
    .venv/bin/python bench/gateway_overhead.py --gateway-loop asyncio --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

HOST = "127.0.0.1"
PROVIDER_KEY = "sk-bench-provider-key-0123456789abcdef"
TARGET_P50_ADDED_MS = 3.0
TARGET_P99_ADDED_MS = 15.0
TARGET_RPS = 300.0
PROMPT_TOKENS, COMPLETION_TOKENS = 11, 7
PRICE_IN, PRICE_OUT = 1.0, 2.0  # USD per million tokens
COST_PER_CALL_NANO = round((PROMPT_TOKENS * PRICE_IN + COMPLETION_TOKENS * PRICE_OUT) * 1000)
CHILD_STARTUP_S = 60.0


def stop_event() -> asyncio.Event:
    """Set on SIGTERM/SIGINT or when the parent closes our stdin (so an abandoned child does not linger)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def watch_stdin() -> None:
        try:
            sys.stdin.buffer.read()
        finally:
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    return stop


# ---------------------------------------------------------------------------------------------------------------
# The fake upstream (child process)
# ---------------------------------------------------------------------------------------------------------------

def upstream_replies() -> tuple[bytes, bytes]:
    """The complete HTTP responses the fake upstream sends: a JSON completion and an SSE stream, usage in both."""
    usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
             "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS, "prompt_tokens_details": {"cached_tokens": 0}}
    body = json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "fake-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi! How can I help you today?"},
                     "finish_reason": "stop"}],
        "usage": usage}).encode()
    complete = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body)
    head = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": "fake-model"}
    events = [head | {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
              for word in ("Hi! ", "How can ", "I help ", "you today?")]
    events.append(head | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append(head | {"choices": [], "usage": usage})
    sse = [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]
    streamed = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                + b"".join(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for chunk in sse) + b"0\r\n\r\n")
    return complete, streamed


CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"


class UpstreamProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one request at a time per connection (as the gateway and the load generator send)."""

    def __init__(self, latency_s: float, complete: bytes, streamed: bytes) -> None:
        self.latency_s, self.complete, self.streamed = latency_s, complete, streamed
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end + 2])
            match = CONTENT_LENGTH.search(head)
            length = int(match.group(1)) if match else 0
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            if not head.startswith(b"POST ") or b"/chat/completions " not in head.split(b"\r\n", 1)[0]:
                self.send(NOT_FOUND)
                continue
            stream = b'"stream":true' in body or b'"stream": true' in body
            self.loop.call_later(self.latency_s, self.send, self.streamed if stream else self.complete)

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


def serve_upstream(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="gateway_overhead.py _upstream")
    parser.add_argument("--latency-ms", type=float, required=True)
    args = parser.parse_args(argv)

    async def main() -> None:
        stop = stop_event()
        complete, streamed = upstream_replies()
        server = await asyncio.get_running_loop().create_server(
            lambda: UpstreamProtocol(args.latency_ms / 1000, complete, streamed), HOST, 0, backlog=1024)
        print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
        await stop.wait()
        server.close()

    uvloop.run(main())


# ---------------------------------------------------------------------------------------------------------------
# The gateway (child process)
# ---------------------------------------------------------------------------------------------------------------

GATEWAY_TOML = """\
[models.bench]
provider = "openai_compatible"
model = "fake-model"
base_url = "http://{host}:{port}/v1"
api_key_env = "BENCH_PROVIDER_KEY"
price = {{ input = {price_in}, output = {price_out} }}
max_output_tokens = 4096

[gateway]
ledger_path = "ledger.sqlite"
"""


def serve_gateway(argv: list[str]) -> None:
    """Print the gateway's address and a token, serve until stopped, then print a summary of the ledger."""
    parser = argparse.ArgumentParser(prog="gateway_overhead.py _gateway")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), required=True)
    args = parser.parse_args(argv)

    from sica.config import load_settings
    from sica.gateway import Listen, run_gateway

    environ = {"BENCH_PROVIDER_KEY": PROVIDER_KEY}
    settings = load_settings(args.config, environ)

    async def main() -> None:
        stop = stop_event()
        async with run_gateway(settings, environ, settings.gateway.ledger_path, Listen(host=HOST, port=0)) as running:
            gateway = running.gateway
            run = gateway.open_account("bench-run", limit_usd=1000.0)
            bench = gateway.open_account("bench", parent=run.id, limit_usd=100.0)
            print(json.dumps({"base_url": running.base_url, "token": bench.token}), flush=True)
            await stop.wait()
            await gateway.drain(timeout_s=5)
            statuses: dict[str, int] = {}
            cost = 0
            for row in gateway.ledger.calls(bench.id):
                statuses[row["status"]] = statuses.get(row["status"], 0) + 1
                cost += row["cost_nano"]
            account = gateway.account(bench.id)
            print(json.dumps({"ledger_rows": sum(statuses.values()), "statuses": statuses, "ledger_cost_nano": cost,
                              "spent_nano": account.spent_nano, "reserved_nano": account.reserved_nano,
                              "parent_spent_nano": gateway.account(run.id).spent_nano}), flush=True)

    (uvloop.run if args.loop == "uvloop" else asyncio.run)(main())


# ---------------------------------------------------------------------------------------------------------------
# Children, seen from the parent
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    info: dict[str, Any]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_s(self) -> float:
        """User + system CPU seconds of the process so far (all its threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> list[dict[str, Any]]:
        """Close stdin (the child's cue to stop), wait, and return any JSON lines it printed after its handshake."""
        out = b""
        if self.proc.poll() is None:
            try:
                out, _ = self.proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    out, _ = self.proc.communicate(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    out, _ = self.proc.communicate()
        lines = []
        for line in out.decode(errors="replace").splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
        return lines


def start_child(name: str, args: list[str], workdir: Path) -> Child:
    """Run this script with `args` and wait for the JSON line the child prints once it is ready."""
    log = workdir / f"{name}.log"
    # SICA_* variables would override the benchmark's sica.toml (pydantic-settings reads the environment).
    env = {key: value for key, value in os.environ.items() if not key.startswith("SICA_")}
    with log.open("wb") as log_file:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=log_file, cwd=workdir, env=env)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], CHILD_STARTUP_S)
    line = proc.stdout.readline() if ready else b""
    if not line:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"the {name} did not start; its log ({log}):\n{log.read_text()[-4000:]}")
    return Child(name, proc, log, json.loads(line))


# ---------------------------------------------------------------------------------------------------------------
# The load generator's clients
# ---------------------------------------------------------------------------------------------------------------

class BadReply(Exception):
    pass


class RawClient:
    """One keep-alive HTTP/1.1 connection on asyncio streams: the cheapest client Python offers."""

    def __init__(self, host: str, port: int, path: str, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.prefix = (f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
                       f"{extra}content-length: ").encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> bytes:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None and self.writer is not None
        try:
            self.writer.write(self.prefix + str(len(body)).encode() + b"\r\n\r\n" + body)
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            lower = head.lower()
            if b"\r\ntransfer-encoding: chunked" in lower:
                parts = []
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
                    if size == 0:
                        await self.reader.readuntil(b"\r\n")
                        break
                    parts.append((await self.reader.readexactly(size + 2))[:-2])
                data = b"".join(parts)
            else:
                match = CONTENT_LENGTH.search(head)
                data = await self.reader.readexactly(int(match.group(1))) if match else b""
            if b"\r\nconnection: close" in lower:
                await self.aclose()
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            await self.aclose()
            raise BadReply(f"connection broke: {type(exc).__name__}") from None
        if status != 200:
            raise BadReply(f"HTTP {status}: {data[:200]!r}")
        return data

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class HttpxClient:
    """The same requests through httpx.AsyncClient, on one keep-alive connection."""

    def __init__(self, host: str, port: int, path: str, headers: dict[str, str]) -> None:
        import httpx

        self.url = f"http://{host}:{port}{path}"
        self.headers = {"content-type": "application/json", **headers}
        self.client = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=1,
                                                                        max_keepalive_connections=1))

    async def post(self, body: bytes) -> bytes:
        async with self.client.stream("POST", self.url, content=body, headers=self.headers) as response:
            data = b"".join([chunk async for chunk in response.aiter_raw()])
        if response.status_code != 200:
            raise BadReply(f"HTTP {response.status_code}: {data[:200]!r}")
        return data

    async def aclose(self) -> None:
        await self.client.aclose()


Client = RawClient | HttpxClient


@dataclass
class Target:
    """Where requests go (the upstream directly, or the gateway), and how many were sent there, warm-ups included."""

    name: str
    port: int
    headers: dict[str, str]
    body: bytes
    stream_body: bytes
    sent: int = 0

    def client(self, kind: str) -> Client:
        client_class = HttpxClient if kind == "httpx" else RawClient
        return client_class(HOST, self.port, "/v1/chat/completions", self.headers)


def request_bodies(model: str, prompt_bytes: int, max_tokens: int) -> tuple[bytes, bytes]:
    """The JSON request body, plain and streamed."""
    prompt = ("Say hi. " * (prompt_bytes // 8 + 1))[:prompt_bytes]
    body = {"model": model, "messages": [{"role": "system", "content": "You are a helpful assistant."},
                                         {"role": "user", "content": prompt}], "max_tokens": max_tokens}
    return json.dumps(body).encode(), json.dumps(body | {"stream": True}).encode()


def check_reply(data: bytes, stream: bool) -> None:
    if stream:
        if b"data: [DONE]" not in data or b'"usage"' not in data:
            raise BadReply(f"incomplete stream: {data[-200:]!r}")
    elif b'"usage"' not in data:
        raise BadReply(f"no usage in reply: {data[:200]!r}")


# ---------------------------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------------------------

def percentile(samples: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


async def measure_latency(direct: Target, via: Target, client_kind: str, requests: int, warmup: int,
                          stream: bool) -> dict[str, Any]:
    """Sequential requests, one in flight at a time, alternating direct and gateway (the order flips each pair)."""
    pairs = [(direct, direct.client(client_kind)), (via, via.client(client_kind))]
    samples: dict[str, list[float]] = {direct.name: [], via.name: []}
    errors = {direct.name: 0, via.name: 0}
    try:
        for i in range(warmup + requests):
            for target, client in pairs if i % 2 == 0 else pairs[::-1]:
                target.sent += 1
                started = time.perf_counter_ns()
                try:
                    check_reply(await client.post(target.stream_body if stream else target.body), stream)
                except BadReply:
                    errors[target.name] += 1
                    continue
                if i >= warmup:
                    samples[target.name].append((time.perf_counter_ns() - started) / 1e6)
    finally:
        for _, client in pairs:
            await client.aclose()
    summary: dict[str, Any] = {
        name: {"p50_ms": percentile(ms, 0.50), "p99_ms": percentile(ms, 0.99), "n": len(ms), "errors": errors[name],
               "min_ms": min(ms, default=float("nan")), "max_ms": max(ms, default=float("nan"))}
        for name, ms in samples.items()}
    summary["added_p50_ms"] = summary[via.name]["p50_ms"] - summary[direct.name]["p50_ms"]
    summary["added_p99_ms"] = summary[via.name]["p99_ms"] - summary[direct.name]["p99_ms"]
    return summary


@dataclass
class LoadRound:
    target: str
    completed: int
    errors: int
    elapsed_s: float
    latencies_ms: list[float] = field(repr=False)
    cpu_s: dict[str, float]

    @property
    def rps(self) -> float:
        return self.completed / self.elapsed_s


async def measure_load(target: Target, client_kind: str, concurrency: int, duration_s: float, warmup_s: float,
                       children: list[Child]) -> LoadRound:
    """`concurrency` clients, one connection each, back to back for `duration_s` (after an unrecorded warm-up)."""
    clients = [target.client(client_kind) for _ in range(concurrency)]
    latencies: list[float] = []
    errors = 0

    async def worker(client: Client, until: float, record: bool) -> int:
        nonlocal errors
        done = 0
        while time.perf_counter() < until:
            target.sent += 1
            started = time.perf_counter_ns()
            try:
                check_reply(await client.post(target.body), stream=False)
            except BadReply:
                errors += record
                continue
            done += 1
            if record:
                latencies.append((time.perf_counter_ns() - started) / 1e6)
        return done

    def cpu_s() -> dict[str, float]:
        return {c.name: c.cpu_s() for c in children} | {"load generator": time.process_time()}

    try:
        if warmup_s > 0:
            until = time.perf_counter() + warmup_s
            await asyncio.gather(*(worker(c, until, record=False) for c in clients))
        cpu_before = cpu_s()
        started = time.perf_counter()
        done = await asyncio.gather(*(worker(c, started + duration_s, record=True) for c in clients))
        elapsed = time.perf_counter() - started
        cpu_after = cpu_s()
    finally:
        for client in clients:
            await client.aclose()
    cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_before}
    return LoadRound(target.name, sum(done), errors, elapsed, latencies, cpu)


def summarize_load(rounds: list[LoadRound], name: str) -> dict[str, Any]:
    mine = [r for r in rounds if r.target == name]
    completed = sum(r.completed for r in mine)
    elapsed = sum(r.elapsed_s for r in mine)
    latencies = [x for r in mine for x in r.latencies_ms]
    cpu_names = mine[0].cpu_s.keys() if mine else []
    return {"rps": completed / elapsed if elapsed else 0.0, "completed": completed, "elapsed_s": elapsed,
            "errors": sum(r.errors for r in mine), "rounds_rps": [round(r.rps, 1) for r in mine],
            "p50_ms": percentile(latencies, 0.50), "p99_ms": percentile(latencies, 0.99),
            "cpu_ms_per_request": {k: 1000 * sum(r.cpu_s[k] for r in mine) / max(completed, 1) for k in cpu_names}}


# ---------------------------------------------------------------------------------------------------------------
# The benchmark and its report
# ---------------------------------------------------------------------------------------------------------------

def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def run_benchmark(args: argparse.Namespace, upstream: Child, gateway: Child) -> dict[str, Any]:
    direct = Target("direct", upstream.info["port"], {"authorization": f"Bearer {PROVIDER_KEY}"},
                    *request_bodies("fake-model", args.prompt_bytes, args.max_tokens))
    via = Target("gateway", int(gateway.info["base_url"].rsplit(":", 1)[1]),
                 {"authorization": f"Bearer {gateway.info['token']}"},
                 *request_bodies("bench", args.prompt_bytes, args.max_tokens))
    results: dict[str, Any] = {}

    say(f"[1/3] sequential latency: {args.warmup} warm-up + {args.requests} measured requests per target, "
        "alternated")
    results["latency"] = await measure_latency(direct, via, args.client, args.requests, args.warmup, stream=False)

    say(f"[2/3] throughput: {args.concurrency} concurrent clients, {args.rounds} x {args.duration:g} s per target "
        "(ABBA order)")
    rounds: list[LoadRound] = []
    for r in range(args.rounds):
        for target in ([direct, via] if r % 2 == 0 else [via, direct]):
            rounds.append(await measure_load(target, args.client, args.concurrency, args.duration, args.load_warmup,
                                             [upstream, gateway]))
            say(f"      {target.name:8s} {rounds[-1].rps:7.1f} req/s  ({rounds[-1].completed} in "
                f"{rounds[-1].elapsed_s:.2f} s, {rounds[-1].errors} errors)")
    results["throughput"] = {t.name: summarize_load(rounds, t.name) for t in (direct, via)}

    if args.stream_requests > 0:
        say(f"[3/3] streamed latency: {args.stream_requests} requests per target, alternated")
        results["stream_latency"] = await measure_latency(direct, via, args.client, args.stream_requests,
                                                          min(10, args.warmup), stream=True)
    else:
        say("[3/3] streamed latency: skipped (--stream-requests 0)")
    results["sent"] = {direct.name: direct.sent, via.name: via.sent}
    return results


def target_checks(results: dict[str, Any]) -> dict[str, bool]:
    latency, gateway = results["latency"], results["throughput"]["gateway"]
    return {"added_p50_ms": latency["added_p50_ms"] <= TARGET_P50_ADDED_MS,
            "added_p99_ms": latency["added_p99_ms"] <= TARGET_P99_ADDED_MS,
            "rps": gateway["rps"] >= TARGET_RPS}


def ledger_verdict(ledger: dict[str, Any] | None, sent_via_gateway: int) -> str:
    """One row per request sent via the gateway, all ok, each charged its cost to both accounts, nothing reserved."""
    if ledger is None:
        return "ledger: the gateway printed no summary -> INCONSISTENT"
    ok = ledger["statuses"].get("ok", 0)
    expected_nano = ok * COST_PER_CALL_NANO
    charged = (ledger["ledger_cost_nano"], ledger["spent_nano"], ledger["parent_spent_nano"])
    consistent = (ledger["ledger_rows"] == sent_via_gateway == ok and ledger["reserved_nano"] == 0
                  and all(nano == expected_nano for nano in charged))
    return (f"ledger: {ledger['ledger_rows']} rows {ledger['statuses']} for {sent_via_gateway} requests sent via the "
            f"gateway (warm-ups included); cost in rows {ledger['ledger_cost_nano']}, spent {ledger['spent_nano']} "
            f"(parent {ledger['parent_spent_nano']}), expected {ok} x {COST_PER_CALL_NANO} nano-USD; still reserved "
            f"{ledger['reserved_nano']} -> {'consistent' if consistent else 'INCONSISTENT'}")


def print_report(args: argparse.Namespace, results: dict[str, Any], ledger: dict[str, Any] | None) -> None:
    latency, streamed = results["latency"], results.get("stream_latency")
    direct, gateway = results["throughput"]["direct"], results["throughput"]["gateway"]
    checks = target_checks(results)

    def row(label: str, direct_ms: float, gateway_ms: float, target: str = "",
            passed: bool | None = None) -> tuple[str, ...]:
        verdict = "" if passed is None else "PASS" if passed else "FAIL"
        return label, f"{direct_ms:.2f}", f"{gateway_ms:.2f}", f"{gateway_ms - direct_ms:+.2f}", target, verdict

    rows = [
        row("latency p50 (ms)", latency["direct"]["p50_ms"], latency["gateway"]["p50_ms"],
            f"added <= {TARGET_P50_ADDED_MS:g} ms", checks["added_p50_ms"]),
        row("latency p99 (ms)", latency["direct"]["p99_ms"], latency["gateway"]["p99_ms"],
            f"added <= {TARGET_P99_ADDED_MS:g} ms", checks["added_p99_ms"]),
        (f"throughput @{args.concurrency} (req/s)", f"{direct['rps']:.1f}", f"{gateway['rps']:.1f}",
         f"x{gateway['rps'] / direct['rps']:.2f}" if direct["rps"] else "-", f">= {TARGET_RPS:g} req/s",
         "PASS" if checks["rps"] else "FAIL"),
        row(f"  latency p50 @{args.concurrency} (ms)", direct["p50_ms"], gateway["p50_ms"]),
        row(f"  latency p99 @{args.concurrency} (ms)", direct["p99_ms"], gateway["p99_ms"]),
    ]
    for who in ("gateway", "upstream", "load generator"):
        rows.append((f"  CPU ms/request: {who}", f"{direct['cpu_ms_per_request'].get(who, 0):.3f}",
                     f"{gateway['cpu_ms_per_request'].get(who, 0):.3f}", "", "", ""))
    if streamed:
        rows += [row("streamed p50 (ms)", streamed["direct"]["p50_ms"], streamed["gateway"]["p50_ms"], "(info)"),
                 row("streamed p99 (ms)", streamed["direct"]["p99_ms"], streamed["gateway"]["p99_ms"], "(info)")]

    header = ("", "direct", "via gateway", "added", "target", "result")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print()
    print(f"sica gateway overhead: upstream latency {args.latency_ms:g} ms, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, gateway loop {args.gateway_loop}, client {args.client}, "
          f"prompt {args.prompt_bytes} B")
    print(f"sequential: {latency['direct']['n']} measured requests per target; throughput: {args.rounds} rounds x "
          f"{args.duration:g} s per target (per-round req/s direct {direct['rounds_rps']}, "
          f"gateway {gateway['rounds_rps']})")
    print()
    for i, cells in enumerate([header, *rows]):
        print("  ".join(cell.ljust(widths[k]) if k == 0 else cell.rjust(widths[k])
                        for k, cell in enumerate(cells)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print()
    errors = sum(summary[name]["errors"] for summary in (latency, results["throughput"], streamed) if summary
                 for name in ("direct", "gateway"))
    print(f"errors: {errors}")
    print(ledger_verdict(ledger, results["sent"]["gateway"]))
    print(f"overall: {'PASS' if all(checks.values()) else 'FAIL'} (a benchmark: the exit status is 0 either way)")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="measured sequential requests per target")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured sequential requests per target first")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="the fake upstream's fixed latency")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients in the throughput phase")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per throughput round")
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds per target (ABBA order)")
    parser.add_argument("--load-warmup", type=float, default=0.5, help="unmeasured seconds before each round")
    parser.add_argument("--stream-requests", type=int, default=80,
                        help="sequential streamed requests per target (0 skips the streamed phase)")
    parser.add_argument("--prompt-bytes", type=int, default=64, help="size of the user message")
    parser.add_argument("--max-tokens", type=int, default=256, help="max_tokens in each request")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="load generator client: raw asyncio streams or httpx.AsyncClient")
    parser.add_argument("--gateway-loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="event loop of the gateway process: uvloop as in `sica gateway`, asyncio (stdlib) as in "
                        "the tests")
    parser.add_argument("--json", metavar="PATH", help="also write all figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (config, ledger, logs)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_upstream"]:
        serve_upstream(argv[1:])
        return 0
    if argv[:1] == ["_gateway"]:
        serve_gateway(argv[1:])
        return 0
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="sica-gateway-bench-"))
    started = time.monotonic()
    children: list[Child] = []
    try:
        upstream = start_child("upstream", ["_upstream", "--latency-ms", str(args.latency_ms)], workdir)
        children.append(upstream)
        config = workdir / "sica.toml"
        config.write_text(GATEWAY_TOML.format(host=HOST, port=upstream.info["port"], price_in=PRICE_IN,
                                              price_out=PRICE_OUT))
        gateway = start_child("gateway", ["_gateway", "--config", str(config), "--loop", args.gateway_loop], workdir)
        children.append(gateway)
        say(f"upstream pid {upstream.pid} on :{upstream.info['port']}, gateway pid {gateway.pid} at "
            f"{gateway.info['base_url']}, temp dir {workdir}")
        results = uvloop.run(run_benchmark(args, upstream, gateway))
        ledger = next((line for line in gateway.stop() if "ledger_rows" in line), None)
    except Exception as exc:  # noqa: BLE001 - a benchmark that cannot run says why and exits 2
        say(f"benchmark could not run: {exc}")
        for child in children:
            say(f"--- {child.name} log ---\n{child.log.read_text()[-3000:]}")
        return 2
    finally:
        for child in children:
            child.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_report(args, results, ledger)
    print(f"wall time: {time.monotonic() - started:.1f} s")
    if args.json:
        targets = {"added_p50_ms": TARGET_P50_ADDED_MS, "added_p99_ms": TARGET_P99_ADDED_MS, "rps": TARGET_RPS}
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results, "ledger": ledger,
                                               "targets": targets, "passed": target_checks(results)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
