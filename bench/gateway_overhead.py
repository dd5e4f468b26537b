#!/usr/bin/env python
"""Latency and throughput the sica gateway adds over calling a fixed-latency upstream directly.

Three processes, so that no two of them share a GIL or an event loop:

* a fake OpenAI-compatible upstream (raw asyncio protocol on uvloop) that answers `/v1/chat/completions` with a
  fixed JSON body, usage included, after a fixed delay (`--latency-ms`, default 20 ms), or streams a fixed SSE
  answer after the same delay when the request asks for `"stream": true`;
* the gateway, started through `sica.gateway.run_gateway` from a temporary `sica.toml` (one priced
  `openai_compatible` alias pointing at the fake) and a temporary SQLite ledger, with a two-level account tree
  (run -> bench) with USD limits, so every call goes through authentication, worst-case reservation on both
  accounts, ledger begin/end rows (bodies stored) and settlement;
* this process, the load generator (uvloop; by default a minimal keep-alive HTTP/1.1 client on raw asyncio
  streams, `--client httpx` for httpx.AsyncClient).

Phases: (1) sequential latency, direct and via the gateway alternated request by request (the order flips every
pair) after a warm-up, p50/p99 of each and the difference; (2) throughput with `--concurrency` clients, each on
its own keep-alive connection, for `--duration` seconds per round, rounds alternated direct/gateway in ABBA order;
(3) optionally the same latency measurement for streamed calls. All traffic is on 127.0.0.1.

This is a benchmark, not a test: it exits 0 whether targets pass or fail (2 only if it could not run at all).

    .venv/bin/python bench/gateway_overhead.py                     # default run, well under a minute
    .venv/bin/python bench/gateway_overhead.py --gateway-loop uvloop --client httpx --json out.json
    .venv/bin/python bench/gateway_overhead.py --py-spy /tmp/gw.txt # sample the gateway during its throughput rounds
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
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
PROVIDER_KEY = "sk-bench-provider-key-0123456789abcdef"
TARGET_P50_ADDED_MS = 3.0
TARGET_P99_ADDED_MS = 15.0
TARGET_RPS = 300.0
PROMPT_TOKENS, COMPLETION_TOKENS = 11, 7
PRICE_IN, PRICE_OUT = 1.0, 2.0  # USD per million tokens
CHILD_STARTUP_S = 60.0


# ---------------------------------------------------------------------------------------------------------------
# The fake upstream (child process)
# ---------------------------------------------------------------------------------------------------------------

def _upstream_payloads() -> tuple[bytes, bytes]:
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


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"


class _UpstreamProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one request at a time per connection (what httpx and our client do)."""

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
            match = _CONTENT_LENGTH.search(head)
            length = int(match.group(1)) if match else 0
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            if not head.startswith(b"POST ") or b"/chat/completions " not in head.split(b"\r\n", 1)[0]:
                self._send(_NOT_FOUND)
                continue
            stream = b'"stream":true' in body or b'"stream": true' in body
            self.loop.call_later(self.latency_s, self._send, self.streamed if stream else self.complete)

    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


def serve_upstream(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="gateway_overhead.py _upstream")
    parser.add_argument("--latency-ms", type=float, required=True)
    args = parser.parse_args(argv)
    import uvloop

    async def main() -> None:
        stop = _stop_event()
        complete, streamed = _upstream_payloads()
        server = await asyncio.get_running_loop().create_server(
            lambda: _UpstreamProtocol(args.latency_ms / 1000, complete, streamed), HOST, 0, backlog=1024)
        print(json.dumps({"port": server.sockets[0].getsockname()[1], "pid": os.getpid()}), flush=True)
        await stop.wait()
        server.close()

    uvloop.run(main())


def _stop_event() -> asyncio.Event:
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
    parser = argparse.ArgumentParser(prog="gateway_overhead.py _gateway")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--what-if", action="append", default=[])
    parser.add_argument("--cprofile", type=Path)
    args = parser.parse_args(argv)

    from sica.config import load_settings
    from sica.gateway import Listen, run_gateway

    if "nodelay" in args.what_if:
        _patch_nodelay()

    environ = {"BENCH_PROVIDER_KEY": PROVIDER_KEY}
    settings = load_settings(args.config, environ)

    async def main() -> None:
        stop = _stop_event()
        async with run_gateway(settings, environ, settings.gateway.ledger_path, Listen(host=HOST, port=0)) as running:
            gateway = running.gateway
            run = gateway.open_account("bench-run", limit_usd=1000.0)
            bench = gateway.open_account("bench", parent=run.id, limit_usd=100.0)
            print(json.dumps({"base_url": running.base_url, "token": bench.token, "pid": os.getpid()}), flush=True)
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

    # `sica gateway` and `sica chat` run the gateway with asyncio.run (uvicorn gets loop="none"), so that is the
    # default; --gateway-loop uvloop shows what installing uvloop would give.
    profiler = None
    if args.cprofile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        if args.loop == "uvloop":
            import uvloop
            uvloop.run(main())
        else:
            asyncio.run(main())
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.cprofile)


def _patch_nodelay() -> None:
    """What-if: give the gateway's listening socket proto=IPPROTO_TCP, as `loop.create_server(host, port)` would.

    `sica.gateway.server._bound_socket` creates it as `socket.socket(AF_INET, SOCK_STREAM)`, so its `proto` is 0,
    accepted sockets inherit proto 0, and asyncio's `_set_nodelay` (which checks `proto == IPPROTO_TCP`) leaves
    Nagle on for every client connection (uvloop sets TCP_NODELAY regardless). This patch only affects the
    benchmark's own gateway process; it does not change src/.
    """
    import socket

    from sica.gateway import server

    original = server._bound_socket

    def bound_socket(listen: Any) -> socket.socket:
        sock = original(listen)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
            sock.setblocking(False)
        return sock

    server._bound_socket = bound_socket  # type: ignore[assignment]


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
    log = workdir / f"{name}.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=log_file, cwd=workdir)
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

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, body: bytes) -> bytes:
        if self.writer is None or self.writer.is_closing():
            await self._connect()
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
                match = _CONTENT_LENGTH.search(head)
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
    """The same requests through httpx.AsyncClient (what the gateway itself uses upstream)."""

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


@dataclass
class Target:
    name: str
    host: str
    port: int
    headers: dict[str, str]
    body: bytes
    stream_body: bytes
    sent: int = 0

    def client(self, kind: str) -> RawClient | HttpxClient:
        cls = HttpxClient if kind == "httpx" else RawClient
        return cls(self.host, self.port, "/v1/chat/completions", self.headers)


def request_bodies(model: str, prompt_bytes: int, max_tokens: int) -> tuple[bytes, bytes]:
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


@dataclass
class LatencyResult:
    samples_ms: dict[str, list[float]]
    errors: dict[str, int]

    def p(self, name: str, q: float) -> float:
        return percentile(self.samples_ms[name], q)


async def measure_latency(targets: list[Target], client_kind: str, requests: int, warmup: int,
                          stream: bool) -> LatencyResult:
    """Sequential requests, one in flight at a time, alternating targets every request (order flips each pair)."""
    clients = [t.client(client_kind) for t in targets]
    samples: dict[str, list[float]] = {t.name: [] for t in targets}
    errors = {t.name: 0 for t in targets}
    try:
        for i in range(warmup + requests):
            order = list(range(len(targets))) if i % 2 == 0 else list(reversed(range(len(targets))))
            for j in order:
                target, client = targets[j], clients[j]
                body = target.stream_body if stream else target.body
                target.sent += 1
                started = time.perf_counter_ns()
                try:
                    check_reply(await client.post(body), stream)
                except BadReply:
                    errors[target.name] += 1
                    continue
                if i >= warmup:
                    samples[target.name].append((time.perf_counter_ns() - started) / 1e6)
    finally:
        for client in clients:
            await client.aclose()
    return LatencyResult(samples, errors)


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
                       children: list[Child], stream: bool,
                       during: Callable[[], Awaitable[None]] | None = None) -> LoadRound:
    """`concurrency` clients, one connection each, back to back for `duration_s` (after an unrecorded warm-up)."""
    clients = [target.client(client_kind) for _ in range(concurrency)]
    body = target.stream_body if stream else target.body
    latencies: list[float] = []
    errors = 0

    async def worker(client: RawClient | HttpxClient, until: float, record: bool) -> int:
        nonlocal errors
        done = 0
        while time.perf_counter() < until:
            target.sent += 1
            started = time.perf_counter_ns()
            try:
                check_reply(await client.post(body), stream)
            except BadReply:
                errors += record
                continue
            done += 1
            if record:
                latencies.append((time.perf_counter_ns() - started) / 1e6)
        return done

    try:
        if warmup_s > 0:
            until = time.perf_counter() + warmup_s
            await asyncio.gather(*(worker(c, until, False) for c in clients))
        profiler = asyncio.ensure_future(during()) if during else None
        cpu_before = {c.name: c.cpu_s() for c in children} | {"load generator": time.process_time()}
        started = time.perf_counter()
        done = await asyncio.gather(*(worker(c, started + duration_s, True) for c in clients))
        elapsed = time.perf_counter() - started
        cpu_after = {c.name: c.cpu_s() for c in children} | {"load generator": time.process_time()}
        if profiler is not None:
            await profiler
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
# The benchmark
# ---------------------------------------------------------------------------------------------------------------

def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


async def run_benchmark(args: argparse.Namespace, upstream: Child, gateway: Child) -> dict[str, Any]:
    direct_body, direct_stream = request_bodies("fake-model", args.prompt_bytes, args.max_tokens)
    gateway_body, gateway_stream = request_bodies("bench", args.prompt_bytes, args.max_tokens)
    gw_port = int(gateway.info["base_url"].rsplit(":", 1)[1])
    direct = Target("direct", HOST, upstream.info["port"], {"authorization": f"Bearer {PROVIDER_KEY}"},
                    direct_body, direct_stream)
    via = Target("gateway", HOST, gw_port, {"authorization": f"Bearer {gateway.info['token']}"},
                 gateway_body, gateway_stream)
    children = [upstream, gateway]
    results: dict[str, Any] = {"sent": {}}

    say(f"[1/3] sequential latency: {args.warmup} warm-up + {args.requests} measured requests per target, "
        "alternated")
    latency = await measure_latency([direct, via], args.client, args.requests, args.warmup, stream=False)
    results["latency"] = _latency_summary(latency)

    say(f"[2/3] throughput: {args.concurrency} concurrent clients, {args.rounds} x {args.duration:g} s per target "
        "(ABBA order)")
    rounds: list[LoadRound] = []
    profiled = False
    for r in range(args.rounds):
        for target in ([direct, via] if r % 2 == 0 else [via, direct]):
            during = None
            if args.py_spy and target is via and not profiled:
                profiled = True
                during = _py_spy_recorder(args, gateway.pid, args.duration)
            rounds.append(await measure_load(target, args.client, args.concurrency, args.duration, args.load_warmup,
                                             children, stream=False, during=during))
            say(f"      {target.name:8s} {rounds[-1].rps:7.1f} req/s  ({rounds[-1].completed} in "
                f"{rounds[-1].elapsed_s:.2f} s, {rounds[-1].errors} errors)")
    results["throughput"] = {t.name: summarize_load(rounds, t.name) for t in (direct, via)}

    if args.stream_requests > 0:
        say(f"[3/3] streamed latency: {args.stream_requests} requests per target, alternated")
        streamed = await measure_latency([direct, via], args.client, args.stream_requests,
                                         min(10, args.warmup), stream=True)
        results["stream_latency"] = _latency_summary(streamed)
    else:
        say("[3/3] streamed latency: skipped (--stream-requests 0)")
    results["sent"] = {direct.name: direct.sent, via.name: via.sent}
    return results


def _latency_summary(result: LatencyResult) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in result.samples_ms:
        out[name] = {"p50_ms": result.p(name, 0.50), "p99_ms": result.p(name, 0.99), "n": len(result.samples_ms[name]),
                     "errors": result.errors[name], "min_ms": min(result.samples_ms[name], default=float("nan")),
                     "max_ms": max(result.samples_ms[name], default=float("nan"))}
    out["added_p50_ms"] = out["gateway"]["p50_ms"] - out["direct"]["p50_ms"]
    out["added_p99_ms"] = out["gateway"]["p99_ms"] - out["direct"]["p99_ms"]
    return out


def _py_spy_recorder(args: argparse.Namespace, pid: int, duration_s: float) -> Callable[[], Awaitable[None]]:
    async def record() -> None:
        exe = shutil.which("py-spy") or args.py_spy_bin
        if not exe:
            say("      (py-spy not found: pass --py-spy-bin PATH; not profiling)")
            return
        fmt = "speedscope" if args.py_spy.endswith(".json") else "raw"
        cmd = [exe, "record", "--pid", str(pid), "--rate", "250", "--nonblocking", "--format", fmt,
               "--duration", str(max(1, int(duration_s))), "-o", args.py_spy]
        if args.py_spy_native:
            cmd.append("--native")
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        say(f"      py-spy -> {args.py_spy} (exit {proc.returncode}) {err.decode(errors='replace').strip()[-300:]}")

    return record


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def print_report(args: argparse.Namespace, results: dict[str, Any], ledger: dict[str, Any] | None,
                 sent_via_gateway: int) -> None:
    lat, thr = results["latency"], results["throughput"]
    d, g = thr["direct"], thr["gateway"]
    rows = [
        ("latency p50 (ms)", f"{lat['direct']['p50_ms']:.2f}", f"{lat['gateway']['p50_ms']:.2f}",
         f"+{lat['added_p50_ms']:.2f}", f"added <= {TARGET_P50_ADDED_MS:g} ms",
         _verdict(lat["added_p50_ms"] <= TARGET_P50_ADDED_MS)),
        ("latency p99 (ms)", f"{lat['direct']['p99_ms']:.2f}", f"{lat['gateway']['p99_ms']:.2f}",
         f"+{lat['added_p99_ms']:.2f}", f"added <= {TARGET_P99_ADDED_MS:g} ms",
         _verdict(lat["added_p99_ms"] <= TARGET_P99_ADDED_MS)),
        (f"throughput @{args.concurrency} (req/s)", f"{d['rps']:.1f}", f"{g['rps']:.1f}",
         f"x{g['rps'] / d['rps']:.2f}" if d["rps"] else "-", f">= {TARGET_RPS:g} req/s",
         _verdict(g["rps"] >= TARGET_RPS)),
        (f"  latency p50 @{args.concurrency} (ms)", f"{d['p50_ms']:.2f}", f"{g['p50_ms']:.2f}",
         f"+{g['p50_ms'] - d['p50_ms']:.2f}", "", ""),
        (f"  latency p99 @{args.concurrency} (ms)", f"{d['p99_ms']:.2f}", f"{g['p99_ms']:.2f}",
         f"+{g['p99_ms'] - d['p99_ms']:.2f}", "", ""),
    ]
    for who in ("gateway", "upstream", "load generator"):
        rows.append((f"  CPU ms/request: {who}", f"{d['cpu_ms_per_request'].get(who, 0):.3f}",
                     f"{g['cpu_ms_per_request'].get(who, 0):.3f}", "", "", ""))
    if "stream_latency" in results:
        s = results["stream_latency"]
        rows += [("streamed p50 (ms)", f"{s['direct']['p50_ms']:.2f}", f"{s['gateway']['p50_ms']:.2f}",
                  f"+{s['added_p50_ms']:.2f}", "(info)", ""),
                 ("streamed p99 (ms)", f"{s['direct']['p99_ms']:.2f}", f"{s['gateway']['p99_ms']:.2f}",
                  f"+{s['added_p99_ms']:.2f}", "(info)", "")]
    header = ("", "direct", "via gateway", "added", "target", "result")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print()
    print(f"sica gateway overhead: upstream latency {args.latency_ms:g} ms, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, gateway loop {args.gateway_loop}, client {args.client}, "
          f"prompt {args.prompt_bytes} B" + (f", WHAT-IF {'+'.join(args.what_if)} (not the code as is)"
                                              if args.what_if else ""))
    print(f"sequential: {lat['direct']['n']} measured requests per target; throughput: {args.rounds} rounds x "
          f"{args.duration:g} s per target (per-round req/s direct {d['rounds_rps']}, gateway {g['rounds_rps']})")
    print()
    for i, row in enumerate([header, *rows]):
        print("  ".join(str(cell).ljust(widths[k]) if k == 0 else str(cell).rjust(widths[k])
                        for k, cell in enumerate(row)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    errors = (lat["direct"]["errors"] + lat["gateway"]["errors"] + d["errors"] + g["errors"]
              + sum(results.get("stream_latency", {}).get(k, {}).get("errors", 0) for k in ("direct", "gateway")))
    print()
    print(f"errors: {errors}")
    if ledger is not None:
        per_call = round((PROMPT_TOKENS * PRICE_IN + COMPLETION_TOKENS * PRICE_OUT) * 1000)
        ok = ledger["statuses"].get("ok", 0)
        consistent = (ledger["ledger_rows"] == sent_via_gateway == ok and ledger["reserved_nano"] == 0
                      and ledger["spent_nano"] == ok * per_call)
        print(f"ledger: {ledger['ledger_rows']} rows {ledger['statuses']} for {sent_via_gateway} requests sent via "
              f"the gateway (warm-ups included); spent {ledger['spent_nano']} nano-USD = {ok} x {per_call}"
              f"{'' if ledger['spent_nano'] == ok * per_call else ' (MISMATCH)'}; still reserved "
              f"{ledger['reserved_nano']} -> {'consistent' if consistent else 'INCONSISTENT'}")
    passed = (lat["added_p50_ms"] <= TARGET_P50_ADDED_MS and lat["added_p99_ms"] <= TARGET_P99_ADDED_MS
              and g["rps"] >= TARGET_RPS)
    print(f"overall: {'PASS' if passed else 'FAIL'} (a benchmark: the exit status is 0 either way)")


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
                        help="sequential streamed requests per target (0 skips the streamed variant)")
    parser.add_argument("--prompt-bytes", type=int, default=64, help="size of the user message")
    parser.add_argument("--max-tokens", type=int, default=256, help="max_tokens in each request")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="load generator client: raw asyncio streams or httpx.AsyncClient")
    parser.add_argument("--gateway-loop", choices=("asyncio", "uvloop"), default="asyncio",
                        help="event loop of the gateway process (`sica gateway` uses asyncio.run)")
    parser.add_argument("--py-spy", metavar="OUT", help="record the gateway with py-spy during its first throughput "
                        "round (OUT ending .json: speedscope, else collapsed stacks)")
    parser.add_argument("--py-spy-bin", metavar="PATH", help="py-spy executable if it is not on PATH")
    parser.add_argument("--py-spy-native", action="store_true", help="include native frames in the profile")
    parser.add_argument("--what-if", action="append", default=[], choices=("nodelay",),
                        help="measure a candidate fix, patched into the benchmark's gateway process only (src/ is "
                        "untouched): nodelay = TCP_NODELAY on client connections under the asyncio loop")
    parser.add_argument("--cprofile", metavar="OUT", help="run the gateway process under cProfile for the whole "
                        "benchmark and write pstats to OUT (slows the gateway: figures are then not comparable)")
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
    ledger = None
    try:
        upstream = start_child("upstream", ["_upstream", "--latency-ms", str(args.latency_ms)], workdir)
        children.append(upstream)
        config = workdir / "sica.toml"
        config.write_text(textwrap.dedent(GATEWAY_TOML.format(host=HOST, port=upstream.info["port"],
                                                              price_in=PRICE_IN, price_out=PRICE_OUT)))
        extra = [arg for name in args.what_if for arg in ("--what-if", name)]
        if args.cprofile:
            extra += ["--cprofile", str(Path(args.cprofile).resolve())]
        gateway = start_child("gateway", ["_gateway", "--config", str(config), "--loop", args.gateway_loop, *extra],
                              workdir)
        children.append(gateway)
        say(f"upstream pid {upstream.pid} on :{upstream.info['port']}, gateway pid {gateway.pid} at "
            f"{gateway.info['base_url']}, temp dir {workdir}")
        import uvloop

        results = uvloop.run(run_benchmark(args, upstream, gateway))
        lines = gateway.stop()
        ledger = next((line for line in lines if "ledger_rows" in line), None)
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
    print_report(args, results, ledger, sent_via_gateway=results["sent"]["gateway"])
    print(f"wall time: {time.monotonic() - started:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results, "ledger": ledger,
                                               "targets": {"added_p50_ms": TARGET_P50_ADDED_MS,
                                                           "added_p99_ms": TARGET_P99_ADDED_MS,
                                                           "rps": TARGET_RPS}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
