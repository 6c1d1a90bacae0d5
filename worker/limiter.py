"""One global rate limit to LightSMS: GCRA on Redis, keyed by login, across all processes and hosts."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
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

    def wait_for_slot(
        self, *, max_wait: float, patience: float = 0.0, counts: Counter[str] | None = None
    ) -> float | None:
        """Take the next free slot if it is at most max_wait, or `patience` when that is longer, seconds
        away, and wait for it: None once it has come. A backlog behind the limit thus takes its
        place in line in one call and waits here, holding its lease, instead of asking again and
        again or cycling through deferral, the due set and the queue. When the next free slot is
        further: the seconds until it, nothing reserved. The wait, or the refusal, is counted in
        `counts` when given (the caller records them with its own), else here and now."""
        wait = self._reserve(max(max_wait, patience))
        counted = wait_counts(wait) if wait >= 0 else {"limiter_full": 1}
        if counts is not None:
            counts.update(counted)
        elif counted:
            self._count(counted)
        if wait < 0:
            return -wait
        if wait > 0:
            self._sleep(wait)
        return None

    def _count(self, counts: dict[str, int]) -> None:
        """Counters for `lightsms-queue metrics`; best effort: a count lost to a Redis blip is no reason to fail."""
        if self.stats is None:
            return
        with contextlib.suppress(redis.RedisError):
            self.stats.record(counts)
