"""Per-upstream limits: concurrency through the real gateway; request and token rates on a fake clock."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx

from sica.gateway.limits import UpstreamLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def admit_all(limiter: UpstreamLimiter, token_counts: list[int]) -> None:
    async def run() -> None:
        for tokens in token_counts:
            async with limiter.admit(tokens):
                pass

    asyncio.run(run())


def test_requests_per_minute_spreads_a_burst_beyond_the_allowance():
    time = FakeTime()
    limiter = UpstreamLimiter(None, 2, None, clock=time.clock, sleep=time.sleep)
    admit_all(limiter, [1, 1, 1])
    assert time.slept == [30.0]  # the third request waits for one request's worth of refill


def test_tokens_per_minute_waits_for_enough_tokens():
    time = FakeTime()
    limiter = UpstreamLimiter(None, None, 600, clock=time.clock, sleep=time.sleep)
    admit_all(limiter, [500, 400])
    assert time.slept == [30.0]  # 300 tokens missing at 10 tokens a second


def test_max_concurrent_queues_calls_and_counts_the_wait_as_queue_time(make_settings, serve):
    running = serve(make_settings("""
        [models.fake]
        provider = "scripted"
        model = "scripted"
        script = "script.jsonl"
        max_concurrent = 2
    """, {"script.jsonl": '{"content": "ok", "latency_s": 1.0}\n' * 6}))
    token = running.gateway.open_account("limited").token
    upstream = running.gateway.routes["fake"].upstream
    send = upstream.complete
    in_flight, most_in_flight = 0, 0

    async def counted(request):
        nonlocal in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        try:
            return await send(request)
        finally:
            in_flight -= 1

    upstream.complete = counted

    def call(_: int) -> int:
        return httpx.post(running.base_url + "/v1/chat/completions", headers={"x-api-key": token}, timeout=30,
                          json={"model": "fake", "messages": [{"role": "user", "content": "hi"}]}).status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(call, range(6))) == [200] * 6
    assert most_in_flight == 2
    rows = list(running.gateway.ledger.calls())
    # Four of the six waited for a slot (until a 1 s call ended, less how much later they came), and that wait is
    # queue time; the upstream time is the latency the script declares.
    assert sum(row["queued_s"] >= 0.15 for row in rows) == 4
    assert all(row["upstream_s"] == 1.0 for row in rows)
