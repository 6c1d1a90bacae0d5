"""poll_incoming: LightSMS's incoming.php onto the durable kombu queue `sms.inbound`.

Beat ticks it every LIGHTSMS_INCOMING_INTERVAL seconds, on each worker's poll thread. One poll:

1. Take the lock (SET NX PX, a random token; worker/poll_lock.py): a second poller, from another
   worker or another beat's tick, skips instead of polling alongside.
2. Read the cursor (UTC unix seconds up to which incoming.php has been read; on first start
   LIGHTSMS_INCOMING_BACKFILL before now), and ask incoming.php for cursor - LIGHTSMS_INCOMING_OVERLAP
   to LightSMS's now, as account-local strings (worker/local_window.py: no local minute skipped
   across a DST change). A LightSMS error ends the poll with the cursor where it was: the next poll
   reads the same window again.
3. In order of arrival (date, then numeric id): skip ids already seen; set aside a malformed item
   (logged with its id, kept on INBOUND_REJECTED for `lightsms-queue inbound rejected`, marked
   seen); publish the others, each then marked seen (SET NX EX). A publish the broker refuses ends
   the poll, cursor unmoved.
4. Only when every item is done, move the cursor to the window's end, in a script that checks the
   lock is still ours (core/lua/inbound_cursor.lua); then release the lock (compare-and-delete).

A crash costs a re-read, never a loss: until the cursor moves, the next poll reads the same window,
and the seen marks keep the re-read from publishing again. One micro-window remains: a poller killed
after a publish and before that item's seen mark publishes that one event again on the re-read.
Consumers dedupe by the event's id (core.contract.event_id), so it is handled once.

A seen mark outlives the overlap many times (max(48 h, 10 x overlap)), and each re-read renews it.
Only a cursor stuck longer than that (LightSMS failing for two days on end) may publish its overlap
again once; consumers keep handled ids for 7 days, so handlers still run once.
Logs carry LightSMS ids and counts, never message text, and phone numbers only masked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import redis

from core import keys
from core.contract import INBOUND_QUEUE, inbound_event
from core.events import EventPublisher
from core.settings import Settings
from core.store import load_script
from lightsms.client import LightSmsClient
from lightsms.errors import LightSmsError
from lightsms.models import IncomingSms

from .limiter import RateLimiter
from .local_window import local_window, received_at
from .poll_lock import PollLock

__all__ = ["IncomingPoller"]

log = logging.getLogger("lightsms_queue.inbound")

SEEN_TTL_MIN = 48 * 3600
CLOCK_SLACK = 1.0
REJECTED_KEEP = 1000  # the newest rejected items kept for inspection
RAW_FIELD_MAX = 1000  # characters kept of each field of a rejected item: a hostile reply stays small
HEALTH_FIELD = "incoming_ok_at"
_FIELDS = ("date", "sender", "phone", "prefix", "text")


@dataclass
class IncomingPoller:
    settings: Settings
    redis: redis.Redis
    client: LightSmsClient
    publisher: EventPublisher
    limiter: RateLimiter | None = None  # one slot of the global rate limit per incoming.php call
    clock: Callable[[], float] | None = None  # LightSMS's now; default: the client's server clock
    zone: ZoneInfo = field(init=False)

    def __post_init__(self) -> None:
        self.zone = ZoneInfo(self.settings.lightsms_timezone)
        # Comfortably above the longest poll's request part; the item loop renews it as it goes.
        self.lock_ttl = max(60.0, 3 * self.settings.request_deadline)
        self.seen_ttl = int(max(SEEN_TTL_MIN, 10 * self.settings.lightsms_incoming_overlap))
        self._advance = self.redis.register_script(load_script("inbound_cursor.lua"))

    def poll(self) -> dict[str, int]:
        """One poll; the counts of what happened (published, duplicates, rejected, skipped, errors ...)."""
        lock = PollLock(self.redis, keys.poll_lock("incoming"), ttl=self.lock_ttl)
        if not lock.acquire():
            # Rare: a poll outlasting the interval, or a tick that reached two workers at once.
            log.info("poll_incoming: skipped, another poll holds the lock")
            return {"skipped": 1}
        try:
            return self._poll(lock)
        finally:
            try:
                lock.release()
            except redis.RedisError as error:  # it expires by itself; the poll's own error matters more
                log.warning("poll_incoming: could not release the lock (%s)", type(error).__name__)

    # -- one poll, under the lock ------------------------------------------------------------------
    def _poll(self, lock: PollLock) -> dict[str, int]:
        if self.limiter is not None and not self.limiter.acquire(max_wait=self.settings.lightsms_limiter_max_wait):
            log.info("poll_incoming: no rate-limit slot free; the next poll reads this window")
            return {"skipped": 1}
        try:
            now = self.clock() if self.clock is not None else self.client.clock.now()
            start = min(self._cursor(now), now) - self.settings.lightsms_incoming_overlap
            # LightSMS's clock is known to the second only (timestamp.php): ask a second past our idea
            # of its now, so an SMS it dated this very second is not left for the next poll.
            low, high = local_window(start, now + CLOCK_SLACK, self.zone)
            items = self.client.incoming(start=low, end=high)
        except LightSmsError as error:
            code = "" if error.code is None else f", code {error.code}"
            log.warning("poll_incoming: incoming.php failed (%s%s); the cursor stays", type(error).__name__, code)
            return {"errors": 1}
        counts = self._handle(sorted(items, key=_arrival_order), lock)
        if counts["publish_failed"] or counts["lock_lost"]:
            return dict(counts)
        if not self._advance(keys=[lock.key, keys.INBOUND_CURSOR, keys.POLLER_HEALTH],
                             args=[lock.token, repr(now), HEALTH_FIELD, repr(time.time())]):  # fmt: skip
            log.warning("poll_incoming: the lock ran out before the cursor moved; the next poll reads this window")
            counts["lock_lost"] += 1
        if counts["published"] or counts["rejected"]:
            log.info("poll_incoming: %s (from %s to %s)", _summary(counts), low, high)
        return dict(counts)

    def _cursor(self, now: float) -> float:
        raw = self.redis.get(keys.INBOUND_CURSOR)
        if raw is not None:
            try:
                return float(raw)
            except ValueError:
                log.error("poll_incoming: unreadable cursor; reading back the backfill period")
        return now - self.settings.lightsms_incoming_backfill

    def _handle(self, items: list[IncomingSms], lock: PollLock) -> Counter[str]:
        counts: Counter[str] = Counter()
        seen_keys = [keys.inbound_seen(_seen_id(item)) for item in items]
        # EXPIRE is the existence check: it answers 1 for a mark that exists, and renews it.
        pipe = self.redis.pipeline(transaction=False)
        for key in seen_keys:
            pipe.expire(key, self.seen_ttl)
        already = pipe.execute()
        done: set[str] = set()  # an id LightSMS listed twice in one reply counts once
        renew_after = time.monotonic()  # renewed (and so checked) before the first publish
        for item, key, seen in zip(items, seen_keys, already, strict=True):
            if seen or key in done:
                counts["duplicates"] += 1
                continue
            if time.monotonic() >= renew_after:
                if not lock.renew():
                    log.warning("poll_incoming: the lock ran out mid-poll; stopping, the cursor stays")
                    counts["lock_lost"] += 1
                    return counts
                renew_after = time.monotonic() + self.lock_ttl / 3
            event, reason = self._event(item)
            if event is None:
                self._reject(item, reason, key)
                counts["rejected"] += 1
            else:
                try:
                    self.publisher.publish(INBOUND_QUEUE, event)
                except Exception as error:  # noqa: BLE001 - any broker failure: stop, re-read next time
                    log.warning("poll_incoming: publishing failed (%s); stopping, the cursor stays",
                                type(error).__name__)  # fmt: skip
                    counts["publish_failed"] += 1
                    return counts
                self.redis.set(key, "1", nx=True, ex=self.seen_ttl)
                counts["published"] += 1
            done.add(key)
        return counts

    def _event(self, item: IncomingSms) -> tuple[dict[str, Any] | None, str]:
        """The event for a readable item, or (None, why it is not)."""
        if item.problem is not None:
            return None, item.problem
        for name in ("sender", "date"):
            if not getattr(item, name):
                return None, f"missing {name}"
        if item.text is None:
            return None, "missing text"  # an empty text is a text; a missing one is not
        assert item.date is not None and item.sender is not None
        try:
            when = received_at(item.date, self.zone)
        except ValueError:
            return None, "unreadable date"
        event = inbound_event(sms_id=item.id, received_at=when, sender=item.sender, phone=item.phone or None,
                              prefix=item.prefix or None, text=item.text)  # fmt: skip
        return event, ""

    def _reject(self, item: IncomingSms, reason: str, seen_key: str) -> None:
        log.warning("poll_incoming: set aside incoming SMS %s: %s", _clip(item.id, 64) or "(no id)", reason)
        record = {
            "id": _clip(item.id),
            "reason": reason,
            "fields": {name: _clip(getattr(item, name)) for name in _FIELDS},
            "at": time.time(),
        }
        pipe = self.redis.pipeline(transaction=True)
        # ASCII JSON: a lone surrogate LightSMS escaped in a field must not make the write (and the poll) fail.
        pipe.lpush(keys.INBOUND_REJECTED, json.dumps(record))
        pipe.ltrim(keys.INBOUND_REJECTED, 0, REJECTED_KEEP - 1)
        pipe.set(seen_key, "1", nx=True, ex=self.seen_ttl)  # so that the overlap does not list it again
        pipe.execute()


def _arrival_order(item: IncomingSms) -> tuple[str, int, int, str]:
    # Numeric ids in numeric order without int(): an id of thousands of digits must sort, not raise.
    numeric = item.id.isascii() and item.id.isdigit()
    digits = item.id.lstrip("0")
    return item.date or "", 0 if numeric else 1, len(digits) if numeric else 0, digits if numeric else item.id


def _seen_id(item: IncomingSms) -> str:
    """LightSMS's id; an item without a usable one (none, or one too long to be an id) is named by a
    digest of its fields, so that the overlap's re-read does not set it aside again."""
    if item.id and not item.problem:
        return item.id
    digest = hashlib.sha256(json.dumps([item.id] + [getattr(item, name) for name in _FIELDS]).encode()).hexdigest()
    return "noid-" + digest[:32]


def _clip(value: str | None, limit: int = RAW_FIELD_MAX) -> str | None:
    return value if value is None else value[:limit]


def _summary(counts: Counter[str]) -> str:
    return ", ".join(f"{name} {counts[name]}" for name in ("published", "duplicates", "rejected") if counts[name])
