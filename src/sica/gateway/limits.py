"""Per-upstream limits: concurrent requests, and requests and tokens per minute (token buckets).

A wait is attributed: the part of it that other callers caused (their share of what the bucket gave out in the
last minute, or of the slots held) is queue time, which an attempt is not charged; the part the caller caused
itself is not, so an agent that drains a limit and works on while its next call waits pays for that time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass


class _Bucket:
    """A token bucket refilled continuously at `per_minute / 60` a second, holding at most `per_minute`."""

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self.capacity = float(per_minute)
        self.level = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.stamp = clock()
        self.given: deque[tuple[float, str, float]] = deque()  # (when, to whom, how much) in the last minute

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

    def record(self, owner: str, amount: float) -> None:
        self.given.append((self.clock(), owner, amount))

    def others_share(self, owner: str) -> float:
        """The share of the last minute's allowance that went to callers other than `owner`."""
        while self.given and self.given[0][0] < self.clock() - 60.0:
            self.given.popleft()
        total = sum(amount for _, _, amount in self.given)
        return sum(amount for _, who, amount in self.given if who != owner) / total if total else 0.0


@dataclass
class Admission:
    """How long a call waited to be admitted: in all, and the part of it other callers caused."""

    waited_s: float = 0.0
    for_others_s: float = 0.0


class UpstreamLimiter:
    """Admits attempts to one upstream within its limits; the time spent waiting is queue time, not upstream time."""

    def __init__(
        self,
        max_concurrent: int | None,
        requests_per_minute: int | None,
        tokens_per_minute: int | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._slots = asyncio.Semaphore(max_concurrent) if max_concurrent else None
        self._requests = _Bucket(requests_per_minute, clock) if requests_per_minute else None
        self._tokens = _Bucket(tokens_per_minute, clock) if tokens_per_minute else None
        self._sleep = sleep
        self._clock = clock
        self._holders: list[str] = []

    async def _take(self, bucket: _Bucket | None, amount: float, owner: str, admission: Admission) -> None:
        if bucket is None:
            return
        while (delay := bucket.wait_for(amount)) > 0:
            share = bucket.others_share(owner)
            await self._sleep(delay)
            admission.waited_s += delay
            admission.for_others_s += delay * share
        bucket.record(owner, amount)

    @contextlib.asynccontextmanager
    async def admit(self, estimated_tokens: int, owner: str = "") -> AsyncIterator[Admission]:
        """Wait until a call of `owner` (an account) fits the limits, and hold its slot while the block runs;
        the `Admission` says how long it waited and how much of that others caused."""
        admission = Admission()
        await self._take(self._requests, 1, owner, admission)
        await self._take(self._tokens, estimated_tokens, owner, admission)
        if self._slots is None:
            yield admission
            return
        others = sum(holder != owner for holder in self._holders) / len(self._holders) if self._holders else 0.0
        started = self._clock()
        async with self._slots:
            waited = self._clock() - started
            admission.waited_s += waited
            admission.for_others_s += waited * others
            self._holders.append(owner)
            try:
                yield admission
            finally:
                self._holders.remove(owner)
