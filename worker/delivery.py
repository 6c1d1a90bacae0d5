"""poll_status: status.php for sent messages, each change published on `sms.status`, forward only.

Beat runs it every LIGHTSMS_STATUS_INTERVAL seconds on the poll thread. One process polls at a time
(the poll lock); a paused account is not polled. Messages due in the status-due index (SENT and
PARTLY_DELIVERED, scored by their next check, worker/status_schedule.py) are asked about
STATUS_IDS_PER_CALL to a status.php call, each call one slot of the rate limit the sends share.

For each change the event is published first and the record moved after: a failed publish leaves the
message due (asked again next poll), and a crash between the two repeats the event at worst, which
consumers dedupe by its id `<message_id>:<status>`. Moves are compare-and-set from the states a
message may move forward from, so a late or repeated status never moves one back. No phone number
goes into an event or a log line.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from core import keys
from core.contract import STATUS_QUEUE, status_event
from core.events import EventPublisher
from core.message import Message
from core.pause import AccountCircuit
from core.settings import Settings
from core.states import State
from core.stats import Stats
from core.store import Move, Store
from lightsms.client import STATUS_IDS_PER_CALL, LightSmsClient
from lightsms.errors import LightSmsError, NotSentError, PermanentError
from lightsms.models import DeliveryState, DeliveryStatus

from .limiter import RateLimiter
from .poll_lock import PollLock
from .status_schedule import next_check, past_deadline

log = logging.getLogger("lightsms_queue.delivery")

POLLED = (State.SENT, State.PARTLY_DELIVERED)
# A poll makes at most this many status.php calls (1000 checks): it stays short, and holds few of the
# rate limit's slots at once; what is left is due still, and the next poll's.
MAX_CALLS_PER_POLL = 10
TARGETS = {
    DeliveryState.DELIVERED: State.DELIVERED,
    DeliveryState.UNDELIVERED: State.UNDELIVERED,
    DeliveryState.EXPIRED: State.EXPIRED,
    DeliveryState.PARTLY_DELIVERED: State.PARTLY_DELIVERED,
}
# Forward only: the states each new state may be reached from.
FROM = {
    State.DELIVERED: POLLED,
    State.UNDELIVERED: POLLED,
    State.EXPIRED: POLLED,
    State.PARTLY_DELIVERED: (State.SENT,),
}
COUNTERS = {
    State.DELIVERED: "delivered",
    State.UNDELIVERED: "undelivered",
    State.EXPIRED: "expired",
    State.PARTLY_DELIVERED: "partly_delivered",
}
UNTRACKABLE = "status_untrackable"
DEADLINE = "status_deadline"
# Counted in Stats (`lightsms-queue stats`); the rest of a poll's counts is only its return value.
STATS = (*COUNTERS.values(), UNTRACKABLE, DEADLINE, "status_calls", "status_checks")


def _stops_the_poll(exc: LightSmsError) -> bool:
    """An error that concerns the ids asked (a refusal, 18 "status not obtained") lets the poll go on
    with the next call; any other (no connection, throttled, the account, a reply that could not be
    read) would most likely meet the next call too: the poll stops there."""
    return not (isinstance(exc, PermanentError) or (isinstance(exc, NotSentError) and exc.code == 18))


@dataclass
class StatusPoller:
    settings: Settings
    store: Store
    stats: Stats
    client: LightSmsClient
    limiter: RateLimiter
    circuit: AccountCircuit
    publisher: EventPublisher

    def poll(self) -> dict[str, int]:
        """One poll; what it did, by name, leaving out what it did not do (zeros)."""
        if self.circuit.current() is not None:
            return {"skipped_paused": 1}
        lock = PollLock(self.store.redis, keys.poll_lock("status"), ttl=self._lock_ttl())
        if not lock.acquire():
            return {"skipped_locked": 1}
        try:
            counts = self._poll(lock)
        finally:
            lock.release()
        if not counts["failed"]:
            self.store.redis.hset(keys.POLLER_HEALTH, "status_ok_at", time.time())
        done = {name: n for name, n in sorted(counts.items()) if n}
        if done:
            log.info("status poll: %s", ", ".join(f"{name} {n}" for name, n in done.items()))
        return done

    def _lock_ttl(self) -> float:
        # Renewed before each call: it must outlast one call, its limiter wait and the publishing after.
        return 2 * (self.settings.request_deadline + self.settings.lightsms_limiter_max_wait) + 30

    def _poll(self, lock: PollLock) -> Counter[str]:
        counts: Counter[str] = Counter()
        now = time.time()
        due = self.store.ids_in(keys.STATUS_DUE_INDEX, upto=now, limit=STATUS_IDS_PER_CALL * MAX_CALLS_PER_POLL)
        for start in range(0, len(due), STATUS_IDS_PER_CALL):
            if not lock.renew():
                log.warning("status poll: lost the poll lock; the rest waits for the next poll")
                counts["failed"] += 1
                break
            # The slot first, then the records: behind a backlog of sends the limiter is booked, and
            # each poll would read every due record again only to find no slot.
            if not self.limiter.acquire(max_wait=self.settings.lightsms_limiter_max_wait):
                counts["no_slot"] += len(due) - start  # still due: the next poll asks
                break
            chunk = self._screen(due[start : start + STATUS_IDS_PER_CALL], now, counts)
            if chunk and not self._ask(chunk, counts):
                break
        self.stats.record({name: counts[name] for name in STATS})
        return counts

    def _screen(self, due: Sequence[str], now: float, counts: Counter[str]) -> list[Message]:
        """The due messages that can be asked about; the others leave the index here."""
        asking: list[Message] = []
        deadline = self.settings.lightsms_status_deadline
        for message_id, m in zip(due, self.store.get_many(due), strict=True):
            if m is None or m.state not in POLLED:
                self.store.end_status_checks(message_id, POLLED)  # gone, or moved on: a stale entry
                counts["stale"] += 1
            elif not (m.id_sms and m.id_sms.isascii() and m.id_sms.isdigit()):
                # LightSMS accepted it ("0") without an id_sms (or with one that is no id): nothing to ask.
                note = "LightSMS accepted it without an id_sms: its delivery cannot be followed"
                counts[UNTRACKABLE] += self.store.end_status_checks(message_id, POLLED, {"status_note": note})
            elif past_deadline(_sent_at(m), now, deadline=deadline):
                note = f"no final delivery status {deadline:g} s after sending; last: {m.delivery_status or '-'}"
                counts[DEADLINE] += self.store.end_status_checks(message_id, POLLED, {"status_note": note})
            else:
                asking.append(m)
        return asking

    def _ask(self, chunk: list[Message], counts: Counter[str]) -> bool:
        """One status.php call and what follows from it; False when the poll should stop here."""
        try:
            reply = self.client.status([m.id_sms for m in chunk if m.id_sms])
        except LightSmsError as exc:
            stop = _stops_the_poll(exc)
            log.warning("status.php for %d messages failed (%s: %s); %s", len(chunk), type(exc).__name__, exc,
                        "asked again next poll" if stop else "asked again at their next check")  # fmt: skip
            counts["failed"] += 1
            if stop:
                return False  # left due as they are
            self._reschedule(chunk)
            return True
        counts["status_calls"] += 1
        counts["status_checks"] += len(chunk)
        return self._apply(chunk, reply, counts)

    def _apply(self, chunk: list[Message], reply: dict[str, DeliveryStatus], counts: Counter[str]) -> bool:
        learnt = time.time()
        at = datetime.fromtimestamp(learnt, UTC).isoformat(timespec="seconds")
        moves: list[Move] = []
        unchanged: list[Message] = []
        published = True
        for m in chunk:
            status = reply.get(m.id_sms or "")
            target = TARGETS.get(status.state) if status else None
            if status is None or target is None or target is m.state:
                unchanged.append(m)  # not final yet (pending, sent, an unknown word, absent): ask later
                continue
            if not published:
                continue  # the broker is down: left due, asked again next poll
            event = status_event(message_id=m.id, id_sms=status.id_sms, status=target.value, at=at, metadata=m.metadata)
            try:
                self.publisher.publish(STATUS_QUEUE, event)
            except Exception as exc:  # noqa: BLE001 - whatever the broker did, the message stays due
                log.error("status poll: publishing on %s failed (%s); the changes wait for the next poll",
                          STATUS_QUEUE.name, type(exc).__name__)  # fmt: skip
                counts["failed"] += 1
                published = False
                continue
            fields = (("delivery_status", status.raw), ("status_at", learnt))
            # PARTLY_DELIVERED stays due at its next check; the finals leave the index. The TTL is the
            # record's either way (0 would PERSIST it).
            score, ttl = self._next(m, learnt), self.store.record_ttl
            moves.append(Move(m.id, FROM[target], target, score=score, ttl=ttl, fields=fields, id_sms=status.id_sms))
        for move, (moved, _) in zip(moves, self.store.apply(moves), strict=True):
            counts[COUNTERS[move.to]] += moved
            counts["refused"] += not moved  # it moved on meanwhile (forward only): nothing changes
        self._reschedule(unchanged)
        return published

    def _next(self, m: Message, now: float) -> float:
        schedule, deadline = self.settings.status_schedule, self.settings.lightsms_status_deadline
        return next_check(_sent_at(m), now, schedule, deadline=deadline)

    def _reschedule(self, messages: Sequence[Message]) -> None:
        """Each due again at its next check; XX: one that left the index meanwhile is not put back."""
        if not messages:
            return
        now = time.time()
        pipe = self.store.redis.pipeline(transaction=False)
        for m in messages:
            pipe.zadd(keys.STATUS_DUE_INDEX, {m.id: self._next(m, now)}, xx=True)
        pipe.execute()


def _sent_at(m: Message) -> float:
    """When the schedule counts from: sent_at; a record without one (written by hand, or an operator's
    UNKNOWN -> SENT) counts from its last change."""
    return m.sent_at or m.updated_at or m.created_at
