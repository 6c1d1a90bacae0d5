"""Where a rate-limit slot, taken on the Redis clock, falls on this process's clock.

gcra.lua (the limiter's own slots, those a batch waits in line for) answers a slot as a wait from
the moment it read Redis TIME. Counting that wait from when the thread read the reply makes the
request late by however long the reply took to be read: in a busy process (a thread waiting for
the GIL, the process for a CPU) that was 20 ms and more, and a late request shares its second at
LightSMS with the requests fifty slots after it. So the slot is placed by the offset between Redis
TIME and this process's monotonic clock, estimated as NTP does: the least (reply read - Redis TIME)
seen of late, since no reply is read before it was written.
It is never placed after the reply was read plus its wait (where it was placed before), nor before
the call was made plus its wait (the earliest Redis could have read its clock), nor more than
MOST_EARLIER before the first: a clock stepped back on the Redis host, or a failover to one that is
behind, moves a request earlier by no more than that, for as long as the old offset stays in the
window.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["SlotClock"]

# Offsets are the least seen within the last one to two of these: recent enough to follow a clock
# that drifts or is stepped, long enough to hold a reply read without delay.
OFFSET_WINDOW = 30.0
# The most a slot is placed before (reply read + wait): room for the delays seen in reading a reply
# in a busy process (20 to 40 ms), and the bound on how early a stepped clock can make a request.
MOST_EARLIER = 0.05


class SlotClock:
    def __init__(self, *, window: float = OFFSET_WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        self.now = clock
        self._window = window
        self._lock = threading.Lock()
        self._started = -math.inf
        self._current = math.inf  # the least offset in this window, and in the one before
        self._previous = math.inf

    def place(self, wait: float, redis_now: float, *, asked_at: float, answered_at: float) -> float:
        """When, on self.now's clock, a slot `wait` seconds after Redis TIME `redis_now` comes;
        `asked_at` and `answered_at` are self.now just before the call and just after its reply."""
        offset = self._observe(answered_at, answered_at - redis_now)
        earliest = max(asked_at, answered_at - MOST_EARLIER) + wait
        return min(max(redis_now + offset + wait, earliest), answered_at + wait)

    def _observe(self, at: float, offset: float) -> float:
        """Note one reply's offset (never less than the true one); the least of late."""
        with self._lock:
            if at - self._started >= self._window:
                stale = at - self._started >= 2 * self._window
                self._previous = math.inf if stale else self._current
                self._current = math.inf
                self._started = at
            self._current = min(self._current, offset)
            return min(self._current, self._previous)
