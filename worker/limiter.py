"""One global rate limit to LightSMS: GCRA on Redis, keyed by login, across all processes and hosts."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import redis

from core import keys
from core.stats import Stats
from core.store import load_script


def wait_counts(seconds: float) -> dict[str, int]:
    """The counters of one wait for a slot (`lightsms-queue metrics` shows them)."""
    return {"limiter_waits": 1, "limiter_wait_ms": round(seconds * 1000)} if seconds > 0 else {}


class RateLimiter:
    def __init__(
        self,
        client: redis.Redis,
        *,
        login: str,
        rate: float,
        margin: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        stats: Stats | None = None,
    ) -> None:
        self.stats = stats
        self.key = keys.limiter(login)
        # LightSMS counts requests as they arrive, after network and scheduling jitter has bunched
        # them up a little: slots spaced `margin` wider than 1/rate keep every arrival window within it.
        self.interval_us = int(1_000_000 * (1 + margin) / rate)
        self._script = client.register_script(load_script("gcra.lua"))
        self._sleep = sleep

    def reserve(self, *, max_wait: float) -> float | None:
        """Reserve the next slot within max_wait seconds: the seconds until it, or None (nothing reserved)."""
        wait = self._reserve(max_wait)
        return None if wait < 0 else wait

    def _reserve(self, max_wait: float) -> float:
        """gcra.lua: seconds to wait for the slot reserved, or minus the distance to the next free one."""
        return int(self._script(keys=[self.key], args=[self.interval_us, int(max_wait * 1_000_000)])) / 1_000_000

    def acquire(self, *, max_wait: float) -> bool:
        """Wait for a slot at most max_wait seconds away; False when there is none (the caller defers)."""
        return self.wait_for_slot(max_wait=max_wait) is None

    def wait_for_slot(self, *, max_wait: float, patience: float = 0.0) -> float | None:
        """Take a slot and wait for it: None once it has come. A slot is reserved only when it is at
        most max_wait seconds away; while the next free one is further, wait until it is that near
        and ask again, for at most `patience` seconds in all (a backlog behind the limit waits here,
        holding its lease, instead of cycling through deferral, the due set and the queue). When
        even that is not enough: the seconds until the next free slot, nothing reserved."""
        waited = 0.0
        while True:
            wait = self._reserve(max_wait)
            if wait >= 0:
                waited += wait
                self.record_wait(waited)
                if wait > 0:
                    self._sleep(wait)
                return None
            distance = -wait
            nap = max(distance - max_wait, 0.001)
            if waited + nap > patience:
                self._count({"limiter_full": 1})
                return distance
            self._sleep(nap)
            waited += nap

    def record_wait(self, seconds: float) -> None:
        if seconds > 0:
            self._count(wait_counts(seconds))

    def _count(self, counts: dict[str, int]) -> None:
        """Counters for `lightsms-queue metrics`; best effort: a count lost to a Redis blip is no reason to fail."""
        if self.stats is None:
            return
        with contextlib.suppress(redis.RedisError):
            self.stats.record(counts)
