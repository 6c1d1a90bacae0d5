"""One global rate limit to LightSMS: GCRA on Redis, keyed by login, across all processes and hosts."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import redis

from producers import keys
from producers.store import load_script


class RateLimiter:
    def __init__(
        self,
        client: redis.Redis,
        *,
        login: str,
        rate: float,
        burst: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.key = keys.limiter(login)
        self.interval_us = int(1_000_000 / rate)
        self.tolerance_us = int(burst * self.interval_us)
        self._script = client.register_script(load_script("gcra.lua", package="worker"))
        self._sleep = sleep

    def try_acquire(self) -> float:
        """0.0 when a request may go now; otherwise seconds to wait before asking again."""
        wait_us = int(self._script(keys=[self.key], args=[self.interval_us, self.tolerance_us]))
        return wait_us / 1_000_000

    def acquire(self, *, max_wait: float) -> bool:
        """Wait up to max_wait for a slot; False when none came in time (the caller defers)."""
        deadline = time.monotonic() + max_wait
        while True:
            wait = self.try_acquire()
            if wait == 0.0:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or wait > remaining + 0.001:
                return False
            # A little jitter keeps many waiting threads from asking in lockstep.
            self._sleep(min(remaining, wait + random.uniform(0, wait / 4)))
