"""One global rate limit to LightSMS: GCRA on Redis, keyed by login, across all processes and hosts."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import redis

from core import keys
from core.stats import Stats
from core.store import NoFreeSlot, load_script, slot_reply

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


@dataclass(frozen=True, slots=True)
class SlotTaken:
    """A slot of the rate limit: `wait` seconds away when it was taken (what is counted), coming at
    `at` on the limiter's clock (what is waited for)."""

    wait: float
    at: float


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
        wait, redis_now = slot_reply(reply)
        return wait, self.clock.place(max(wait, 0.0), redis_now, asked_at=asked_at, answered_at=answered_at)

    def acquire(self, *, max_wait: float) -> bool:
        """Wait for a slot at most max_wait seconds away; False when there is none (the caller defers)."""
        return self.wait_for_slot(max_wait=max_wait) is None

    def wait_for_slot(
        self, *, max_wait: float, patience: float = 0.0, counts: Counter[str] | None = None
    ) -> float | None:
        """Take the next free slot if it is at most max_wait, or `patience` when that is longer, seconds
        away, and wait for it (`keep`, its replacements within that wait): None once it has come. A
        backlog behind the limit thus takes its place in line in one call and waits here, holding
        its lease, instead of asking again and again or cycling through deferral, the due set and
        the queue. When the next free slot is further: the seconds until it, nothing reserved."""
        budget = max(max_wait, patience)
        ends = self.clock.now() + budget
        try:
            slot = self.take(within=budget)
        except NoFreeSlot as full:
            self._record({"limiter_full": 1}, counts)
            return full.seconds
        self._record(wait_counts(slot.wait), counts)
        self.keep(slot.at, until=ends, counts=counts)
        return None

    def take(self, *, within: float) -> SlotTaken:
        """Reserve the next free slot if it is at most `within` seconds away; NoFreeSlot, nothing
        reserved, when it is further."""
        wait, at = self._reserve(within)
        if wait < 0:
            raise NoFreeSlot(-wait)
        return SlotTaken(wait, at)

    def keep(
        self, slot_at: float, *, until: float, lead: float = 0.0, counts: Counter[str] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> float:  # fmt: skip
        """Wait until `lead` seconds before `slot_at` (self.clock). Woken more than LATE after the
        slot itself: the next free slot that comes by `until` in its place, waited for the same way,
        at most RETAKES times; with none (or no Redis to ask), go now, late. The slot kept. `sleep`:
        the caller's, if it has one."""
        for retake in range(RETAKES + 1):
            self.sleep_until(slot_at - lead, sleep=sleep)
            if retake == RETAKES or self.clock.now() - slot_at <= LATE:
                return slot_at
            try:
                wait, replacement = self._reserve(max(0.0, until - self.clock.now()))
            except redis.RedisError:  # the slot in hand is as good as it gets: no reason to fail
                return slot_at
            if wait < 0:
                return slot_at
            self._record(Counter({**wait_counts(wait), "limiter_late": 1}), counts)
            slot_at = replacement
        raise AssertionError("unreachable: the last slot is kept")  # pragma: no cover

    def sleep_until(self, moment: float, *, sleep: Callable[[float], None] | None = None) -> None:
        """Wait until `moment` on self.clock; `sleep`: the caller's, if it has one."""
        left = moment - self.clock.now()
        if left > 0:
            (sleep or self._sleep)(left)

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
