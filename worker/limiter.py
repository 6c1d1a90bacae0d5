"""One global rate limit to LightSMS: GCRA on Redis, keyed by login, across all processes and hosts."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Mapping

import redis

from core import keys
from core.stats import Stats
from core.store import load_script

from .slot_clock import SlotClock

# A caller that wakes this late for its slot (a busy process: the thread waited for the GIL or a CPU)
# takes another slot rather than send late, at most RETAKES times: LightSMS counts arrivals, and a
# late request shares its second with the requests fifty slots after it. The limiter's margin is
# then left for what happens after the request leaves.
LATE = 0.005
RETAKES = 3


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
        self.clock = SlotClock()

    def reserve(self, *, max_wait: float) -> float | None:
        """Reserve the next slot within max_wait seconds: the seconds until it, or None (nothing reserved)."""
        wait, _ = self._reserve(max_wait)
        return None if wait < 0 else wait

    def _reserve(self, max_wait: float) -> tuple[float, float]:
        """gcra.lua: the seconds to wait for the slot reserved, or minus the distance to the next free
        one; and when the slot comes on self.clock."""
        asked_at = self.clock.now()
        reply = self._script(keys=[self.key], args=[self.interval_us, int(max_wait * 1_000_000)])
        answered_at = self.clock.now()
        wait_us, _, now_us = (reply.decode() if isinstance(reply, bytes) else str(reply)).partition(":")
        wait, redis_now = int(wait_us) / 1_000_000, int(now_us) / 1_000_000
        return wait, self.clock.place(max(wait, 0.0), redis_now, asked_at=asked_at, answered_at=answered_at)

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
        further: the seconds until it, nothing reserved. Woken more than LATE after the slot: the next
        free slot within what is left of that wait, if there is one. The waits, the slots given up
        and the refusal are counted (`_record`)."""
        budget = max(max_wait, patience)
        ends = self.clock.now() + budget
        wait, slot_at = self._reserve(budget)
        if wait < 0:
            self._record({"limiter_full": 1}, counts)
            return -wait
        retakes = 0
        while True:
            counted = Counter(wait_counts(wait))
            if retakes:
                counted["limiter_late"] += 1
            self._record(counted, counts)  # before the wait: nothing between the slot and the request
            left = slot_at - self.clock.now()
            if left > 0:
                self._sleep(left)
            if retakes == RETAKES or self.clock.now() - slot_at <= LATE:
                return None
            # Woke late: the next free slot within what is left of the wait. None: go now, late.
            wait, retaken_at = self._reserve(max(0.0, ends - self.clock.now()))
            if wait < 0:
                return None
            slot_at = retaken_at
            retakes += 1

    def _record(self, counted: Mapping[str, int], counts: Counter[str] | None) -> None:
        """Into the caller's `counts` when given (it records them with its own), else here and now."""
        if counts is not None:
            counts.update(counted)
        elif counted:
            self._count(counted)

    def _count(self, counts: Mapping[str, int]) -> None:
        """Counters for `lightsms-queue metrics`; best effort: a count lost to a Redis blip is no reason to fail."""
        if self.stats is None:
            return
        with contextlib.suppress(redis.RedisError):
            self.stats.record(counts)
