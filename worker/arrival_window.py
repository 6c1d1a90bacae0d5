"""No more than the limit of requests reach LightSMS in any second, whatever the timing.

The limiter (GCRA) spaces requests `margin` wider than 1/rate, which holds while nothing delays a
request between its slot and its arrival at LightSMS by more than that room (about 30 ms at 50/s).
A busy host (a thread waiting for the GIL, a process for a CPU), the network or LightSMS's own front
end can delay one by more, and a late request shares its second with the ones after it.

This window does not depend on timing. Each signed request enters it in Redis before it leaves (Redis
TIME), and leaves it once its reply came; it may enter only while fewer than `limit` requests are under
way or ended less than a second ago. LightSMS dates a request between those two moments, so in any
second of its arrivals, the last request to enter counted every other one: at most `limit`.

The price: a request holds its place for a second plus its own duration, so a limit of 50 at 100 ms per
request allows about 45 a second, and at most `limit` requests are under way at once. A request that
finds no room within `patience` is not sent (WindowFullError, a NotSentError: retried like a 429), nor
is one whose way in took longer than that (Redis stalled) or failed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator

import redis

from core import keys
from core.store import load_script
from lightsms.errors import NotSentError

__all__ = ["ArrivalWindow", "WindowFullError", "window_limit"]

log = logging.getLogger("lightsms_queue.worker")

# LightSMS's second, and room for the two clocks' rates to differ over it.
WIDTH_US = 1_001_000
# A request under way holds its place until its deadline and this much more (the moments between
# entering and the request starting); only a process lost mid-request, or a leave lost, leaves it so.
UNDER_WAY_SLACK = 1.0
# Entered this long after the patience ran out (a Redis call that stalled): not sent after all. The
# send path marks a batch in flight with room for a request's deadline and a few seconds more; the
# patience and this stay within those seconds (worker/runtime.py), so the lease always covers it.
STALL = 0.5


class WindowFullError(NotSentError):
    """No room in the arrival window within the patience allowed: the request was not sent."""


def window_limit(rate: float) -> int:
    """Requests allowed in any one second at `rate` per second (at least one)."""
    return max(1, math.floor(rate))


class ArrivalWindow:
    def __init__(
        self,
        client: redis.Redis,
        *,
        login: str,
        limit: int,
        request_deadline: float,
        patience: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = keys.arrival_window(login)
        self.limit = limit
        self._bound_us = int((request_deadline + UNDER_WAY_SLACK) * 1_000_000)
        self._patience = patience
        self._sleep = sleep
        self._clock = clock
        self._enter = client.register_script(load_script("window_enter.lua"))
        self._leave = client.register_script(load_script("window_leave.lua"))

    @contextlib.contextmanager
    def admitted(self, endpoint: str) -> Iterator[None]:
        """Around one request to `endpoint`: enter (waiting for room up to the patience), then leave
        once the request is over, whatever its end. Raises NotSentError when it cannot enter."""
        member = uuid.uuid4().hex
        self._wait_to_enter(endpoint, member)
        try:
            yield
        finally:
            self._leave_now(member)

    def _wait_to_enter(self, endpoint: str, member: str) -> None:
        give_up = self._clock() + self._patience
        while True:
            try:
                wait_us = int(self._enter(keys=[self.key], args=[self.limit, member, self._bound_us, WIDTH_US]))
            except redis.RedisError as error:
                # Unchecked, the request could be the one too many: not sent, retried like any other.
                raise NotSentError(f"{endpoint} not sent: the rate limit could not be checked "
                                   f"({type(error).__name__})") from None  # fmt: skip
            if wait_us <= 0:
                if self._clock() > give_up + STALL:
                    # A stalled Redis call: the request must not eat into the lease room it was marked with.
                    self._leave_now(member)
                    raise NotSentError(f"{endpoint} not sent: entering the rate limit took too long")
                return
            left = give_up - self._clock()
            if left <= 0:
                raise WindowFullError(f"{endpoint} not sent: {self.limit} requests already in the last second")
            self._sleep(min(wait_us / 1_000_000, left))

    def _leave_now(self, member: str) -> None:
        try:
            self._leave(keys=[self.key], args=[member])
        except redis.RedisError as error:  # it leaves by itself once its bound passes: only room lost meanwhile
            log.warning("rate limit: a finished request's place not freed (%s)", type(error).__name__)
