"""No more than the limit of requests reach LightSMS in any second, whatever the timing.

The limiter (GCRA, worker/limiter.py) spaces requests `margin` wider than 1/rate, which holds while
nothing delays a request between its slot and its arrival at LightSMS by more than that room (about
20 ms at 50/s). A busy host (a thread waiting for the GIL, a process for a CPU), the network or
LightSMS's own front end can delay one by more, and a late request shares its second with the ones
after it.

This window does not depend on that timing. Each signed request enters it in Redis before it leaves
(Redis TIME), and leaves it once its reply came; it may enter only while fewer than `limit` requests
are under way or ended less than a second ago. LightSMS dates a request between those two moments (it
reads a request within the request's deadline), so in any second of its arrivals, the last request to
enter counted every other one: at most `limit`. A request is never written later than a second after
asking for its place (the transport refuses), so one under way holds its place until its deadline and
that second; one that got no reply keeps it as long.

The price: a request holds its place for a second plus its own duration, so a limit of 50 at 100 ms per
request allows about 45 a second, and at most `limit` requests are under way at once. A request that
finds no room within its patience is not sent (WindowFullError, a NotSentError), nor is one whose way
in failed or took too long (Redis down or stalled).

The send path enters before it marks a batch in flight (`enter`, or `offer` for the claim script to
enter with the mark; then `hold` for the client's request): a wait for room, or a shutdown during it,
then leaves nothing marked. It ends its places with the send's outcome (`ends_kept`, `take_ended`):
the end waits for that one call, a few milliseconds, rather than making a call of its own.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import redis

from lightsms.errors import AmbiguousError, ConnectError, LightSmsError, NotSentError

from . import keys
from .store import PlacesEnded, WindowEntry, load_script

__all__ = ["ArrivalWindow", "Place", "WindowFullError", "window_limit"]

log = logging.getLogger("lightsms_queue.limiter")

# LightSMS's second, and room for the two clocks' rates to differ over it (microseconds).
WIDTH_US = 1_001_000
# A place is good for a request written within this of asking for it, to the request's deadline: a
# request under way holds its place that long (deadline and this) and is never written later.
UNDER_WAY_SLACK = 1.0
# A gateway's reply: LightSMS behind it may not have read the request yet.
GATEWAY_TIMEOUTS = (502, 504)
# A place held for a request (the send path's, taken before the mark) is used only this fresh.
HELD_FRESH = 0.5
# Let in this long after the patience ran out (a Redis call that stalled): not sent after all. A
# request entered after the in-flight mark (a re-sign after a clock refusal) must not eat into the
# lease room it was marked with.
STALL = 0.5


class WindowFullError(NotSentError):
    """No room in the arrival window within the patience allowed: the request was not sent. The
    first place frees up `seconds` from now."""

    def __init__(self, message: str, *, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


def _unchecked(endpoint: str, error: redis.RedisError) -> NotSentError:
    """Unchecked, the request could be the one too many: not sent, retried like any other."""
    return NotSentError(f"{endpoint} not sent: the rate limit could not be checked ({type(error).__name__})")


def window_limit(rate: float) -> int:
    """Requests allowed in any one second at `rate` per second (at least one)."""
    return max(1, math.floor(rate))


@dataclass(frozen=True, slots=True)
class Place:
    """A place in the window: its member, and when (time.monotonic) it was asked for, which is
    before Redis read its clock for it: the place's bound counts from no earlier than this."""

    member: str
    asked_at: float


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
        self.patience = patience
        self._bound_us = int((request_deadline + UNDER_WAY_SLACK) * 1_000_000)
        self._sleep = sleep
        self._clock = clock
        self._enter = client.register_script(load_script("window_enter.lua"))
        self._set_end = client.register_script(load_script("window_end.lua"))
        self._redis = client
        self._held = threading.local()

    # -- the client's hook -------------------------------------------------------------------------
    @contextlib.contextmanager
    def admitted(self, endpoint: str) -> Iterator[float]:
        """Around one request to `endpoint`: the place this thread holds, or a new one (waiting for
        room up to the patience); yields the moment after which the request must not be written (its
        place covers a request written by then to its deadline). Once the request is over: a reply
        ends the place now, no connection frees it, no reply keeps it until its bound. Raises
        NotSentError when it cannot enter."""
        held = self._take_held()
        if held is None:
            place = self.enter(endpoint, patience=self.patience, stall=STALL)
        elif self._clock() - held.asked_at <= HELD_FRESH:
            place = held
        else:
            # Taken before work that took long (a claim that waited for Redis, LightSMS's clock read):
            # renewed, since it has counted all along; a new one only if it is gone, and without
            # waiting, since the batch is marked in flight by now.
            place = self._renewed(endpoint, held) or self.enter(endpoint, patience=0.0, stall=STALL)
        try:
            yield place.asked_at + UNDER_WAY_SLACK
        except ConnectError:  # it never reached LightSMS
            self._free(place)
            raise
        except LightSmsError as error:
            # A reply came (a 429, a 500...), unless from a gateway that may still be waiting on LightSMS.
            if not isinstance(error, AmbiguousError) or error.http_status not in (None, *GATEWAY_TIMEOUTS):
                self._replied(place)
            raise
        else:
            self._replied(place)
        # Anything else (no reply, an interrupt): under way, for all we know, until its bound.

    # -- the send path: a place taken before the in-flight mark ------------------------------------
    def offer(self) -> tuple[Place, WindowEntry]:
        """A new place, not entered yet: what a script needs to enter it (claim.lua, with its slot)."""
        place = Place(uuid.uuid4().hex, self._clock())
        return place, self._entry(place.member)

    def enter(self, endpoint: str, *, patience: float, stall: float | None = None) -> Place:
        """A place, waiting up to `patience` for room. WindowFullError when there is none by then;
        NotSentError when Redis cannot be asked, or (`stall` given) when it answered later than
        `stall` after the patience ran out."""
        member = uuid.uuid4().hex
        args = self._entry(member).args()
        give_up = self._clock() + patience
        while True:
            asked_at = self._clock()
            try:
                wait_us = int(self._enter(keys=[self.key], args=args))
            except redis.RedisError as error:
                raise _unchecked(endpoint, error) from None
            if wait_us <= 0:
                place = Place(member, asked_at)
                if stall is not None and self._clock() > give_up + stall:
                    self._free(place)
                    raise NotSentError(f"{endpoint} not sent: entering the rate limit took too long")
                return place
            left = give_up - self._clock()
            if left <= 0:
                raise WindowFullError(f"{endpoint} not sent: the rate limit's {self.limit} in a second already taken",
                                      seconds=wait_us / 1_000_000)  # fmt: skip
            self._sleep(min(wait_us / 1_000_000, left))

    def hold(self, place: Place) -> None:
        """The next request this thread makes uses `place` (see admitted); one held before is freed."""
        self.release_held()
        self._held.place = place

    def release_held(self) -> None:
        """A place this thread took and no request used (the batch was not sent): freed."""
        place = self._take_held()
        if place is not None:
            self._free(place)

    def forget_held(self) -> None:
        """The place this thread held is known not to be in the window (a script did not enter it)."""
        self._take_held()

    @contextlib.contextmanager
    def ends_kept(self) -> Iterator[None]:
        """Within it, the places of this thread's requests whose replies came are kept for the caller
        to end with its own next call (take_ended); any left are ended on the way out. Within one
        already, it adds nothing (the outer one ends them)."""
        if getattr(self._held, "kept", None) is not None:
            yield
            return
        self._held.kept = []
        try:
            yield
        finally:
            left = self.take_ended()
            self._held.kept = None
            if left is not None:
                self.end_now(left)

    def take_ended(self) -> PlacesEnded | None:
        """The places kept since the last take (see ends_kept), for the caller to end now; None if none."""
        kept: list[str] | None = getattr(self._held, "kept", None)
        if not kept:
            return None
        self._held.kept = []
        return PlacesEnded(self.key, tuple(kept))

    def end_now(self, ended: PlacesEnded) -> None:
        """Places taken (take_ended) that the caller's call did not end after all."""
        for member in ended.members:
            self._end(member)

    def _entry(self, member: str) -> WindowEntry:
        """What window_enter.lua (and claim.lua) take to enter the place `member`."""
        return WindowEntry(self.key, self.limit, member, self._bound_us, WIDTH_US)

    def _take_held(self) -> Place | None:
        place: Place | None = getattr(self._held, "place", None)
        self._held.place = None
        return place

    def _renewed(self, endpoint: str, held: Place) -> Place | None:
        """`held`, good from now again (under way until its bound counted from now); None if gone."""
        asked_at = self._clock()
        try:
            there = int(self._set_end(keys=[self.key], args=[held.member, self._bound_us]))
        except redis.RedisError as error:
            raise _unchecked(endpoint, error) from None
        if not there:
            return None
        if self._clock() - asked_at > STALL:
            self._free(held)
            raise NotSentError(f"{endpoint} not sent: renewing its place in the rate limit took too long")
        return Place(held.member, asked_at)

    def _replied(self, place: Place) -> None:
        """Its reply came: the place ends now, or with the caller's next call (ends_kept)."""
        kept: list[str] | None = getattr(self._held, "kept", None)
        if kept is None:
            self._end(place.member)
        else:
            kept.append(place.member)

    def _end(self, member: str) -> None:
        try:
            self._set_end(keys=[self.key], args=[member, 0])
        except redis.RedisError as error:  # it leaves by itself once its bound passes: only room lost meanwhile
            log.warning("rate limit: a finished request's place not freed (%s)", type(error).__name__)

    def _free(self, place: Place) -> None:
        try:
            self._redis.zrem(self.key, place.member)  # it counts for nothing: gone at once
        except redis.RedisError as error:
            log.warning("rate limit: an unused place not freed (%s)", type(error).__name__)
