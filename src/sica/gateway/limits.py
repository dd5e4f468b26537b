"""Per-upstream limits: concurrent requests, and requests and tokens per minute (token buckets)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable


class _Bucket:
    """A token bucket refilled continuously at `per_minute / 60` a second, holding at most `per_minute`."""

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self.capacity = float(per_minute)
        self.level = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.stamp = clock()

    def wait_for(self, amount: float) -> float:
        """Take `amount` if available and return 0, else return the seconds until it will be."""
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        amount = min(amount, self.capacity)
        if self.level >= amount:
            self.level -= amount
            return 0.0
        return (amount - self.level) / self.rate


class UpstreamLimiter:
    """Admits attempts to one upstream within its limits; the time spent waiting is queue time, not upstream time."""

    def __init__(self, max_concurrent: int | None, requests_per_minute: int | None, tokens_per_minute: int | None,
                 *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._slots = asyncio.Semaphore(max_concurrent) if max_concurrent else None
        self._requests = _Bucket(requests_per_minute, clock) if requests_per_minute else None
        self._tokens = _Bucket(tokens_per_minute, clock) if tokens_per_minute else None
        self._sleep = sleep

    async def _take(self, bucket: _Bucket | None, amount: float) -> None:
        while bucket is not None and (delay := bucket.wait_for(amount)) > 0:
            await self._sleep(delay)

    @contextlib.asynccontextmanager
    async def admit(self, estimated_tokens: int) -> AsyncIterator[None]:
        await self._take(self._requests, 1)
        await self._take(self._tokens, estimated_tokens)
        if self._slots is None:
            yield
            return
        async with self._slots:
            yield
