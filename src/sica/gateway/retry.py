"""Retrying failed attempts: exponential backoff with full jitter, honouring `Retry-After`, within a deadline."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sica.config import RetrySettings
from sica.gateway.upstreams import UpstreamError

T = TypeVar("T")


@dataclass
class CallClock:
    """Where a call's time went: waiting in the gateway (`waited_s`: limits, backoff), the part of that wait not
    of the caller's own making (`queued_s`: others' use of the limits, backoff), upstream; how many attempts."""

    queued_s: float = 0.0
    waited_s: float = 0.0
    upstream_s: float = 0.0
    attempts: int = 0


class Retrier:
    """Runs attempts until one succeeds, a failure is not retryable, or attempts or the deadline run out."""

    def __init__(
        self,
        settings: RetrySettings,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._rng = rng or random.Random()
        self._sleep = sleep

    def backoff(self, failures: int) -> float:
        """Full jitter: uniform in [0, min(max, initial · 2^(failures-1))]."""
        ceiling = min(self.settings.max_backoff_s, self.settings.initial_backoff_s * 2 ** (failures - 1))
        return self._rng.uniform(0, ceiling)

    async def run(self, attempt: Callable[[], Awaitable[T]], clock: CallClock) -> T:
        deadline = time.monotonic() + self.settings.deadline_s
        while True:
            clock.attempts += 1
            try:
                return await attempt()
            except UpstreamError as error:
                if not error.retryable or clock.attempts >= self.settings.max_attempts:
                    raise
                delay = error.retry_after if error.retry_after is not None else self.backoff(clock.attempts)
                if time.monotonic() + delay > deadline:
                    raise
            await self._sleep(delay)
            clock.queued_s += delay
            clock.waited_s += delay
