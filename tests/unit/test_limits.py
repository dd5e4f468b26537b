"""Per-upstream limits: concurrency through the real gateway; request and token rates on a fake clock."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx

from sica.gateway.limits import UpstreamLimiter
from tests.support.config import scripted_config


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


def test_max_concurrent_queues_calls_and_counts_waits_for_others_as_queue_time(make_settings, serve):
    running = serve(make_settings(scripted_config({"fake": {"price": None, "max_concurrent": 2}}),
                                  {"script.jsonl": '{"content": "ok", "latency_s": 1.0}\n' * 6}))
    tokens = [running.gateway.open_account(f"caller {n}").token for n in range(6)]
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

    def call(caller: int) -> int:
        return httpx.post(running.base_url + "/v1/chat/completions", headers={"x-api-key": tokens[caller]}, timeout=30,
                          json={"model": "fake", "messages": [{"role": "user", "content": "hi"}]}).status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(call, range(6))) == [200] * 6
    assert most_in_flight == 2
    rows = list(running.gateway.ledger.calls())
    # Four of the six callers waited for a slot others held (until a 1 s call ended, less how much later they
    # came), and that wait is queue time; the upstream time is the latency the script declares.
    assert sum(row["queued_s"] >= 0.15 for row in rows) == 4
    assert all(row["upstream_s"] == 1.0 for row in rows)


def test_a_wait_of_the_callers_own_making_is_not_queue_time():
    """Waiting for a bucket the caller drained itself is its own time; waiting behind others is queue time, in
    proportion to their share of the last minute's allowance."""
    time = FakeTime()
    limiter = UpstreamLimiter(None, None, 600, clock=time.clock, sleep=time.sleep)

    async def admit(owner: str, tokens: int) -> tuple[float, float]:
        async with limiter.admit(tokens, owner) as admission:
            return admission.waited_s, admission.for_others_s

    async def run() -> list[tuple[float, float]]:
        return [await admit("a", 600), await admit("a", 300), await admit("b", 600)]

    own, then_others = asyncio.run(run())[1:]
    assert own == (30.0, 0.0)                     # "a" emptied the bucket: its wait is its own
    assert then_others == (60.0, 60.0)            # "b" waits behind "a"'s 900 tokens only
