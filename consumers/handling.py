"""One event's path through a handler, whichever broker brought it (runner.py: RabbitMQ through
kombu; redis_consumer.py: a Redis list).

For each event, in this order:
1. its id (core.contract.event_id); an event that cannot be read goes straight to `<queue>.dead`;
2. the handled key (core.keys.handled) exists → the handler already returned for it: ack, skip;
3. the handler runs; it returned → the handled key is set (NX, 7 days), then the event is acked;
4. it raised → the event is published again on its queue with the retry count (a message header)
   plus one, or, once the count reached max_retries, to `<queue>.dead` with the error and the
   handler's name; the original is acked only with or after that publish.

So an event is acked only once its outcome is safe somewhere; a settlement that fails leaves it held,
and the broker side gives it back. Delivery is at least once, which is why handlers must be
idempotent by event id; the handled key makes a redelivery after a successful return a no-op. Logs
carry event ids, queue and handler names and error types, never event text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import redis
from kombu.exceptions import OperationalError

from core import keys
from core.contract import event_id
from core.errors import PayloadError

from .failures import dead_record, describe_error, handler_name

__all__ = ["HANDLED_TTL", "EventHandling", "Handler", "Settlement", "is_outage"]

log = logging.getLogger("lightsms_queue.consumers")

HANDLED_TTL = 7 * 24 * 3600  # a redelivery comes within minutes or hours; a week is plenty
# Redis (the store) down: wait this long for it around a handler before giving up on the event.
STORE_PATIENCE = 60.0
# Replies that say Redis cannot serve now (a long script, a failover, a full disk or memory), not
# that the call is wrong: waited out like a lost connection.
OUTAGE_REPLIES = (redis.exceptions.ReadOnlyError, redis.exceptions.OutOfMemoryError, redis.exceptions.MasterDownError,
                  redis.exceptions.TryAgainError)  # fmt: skip
OUTAGE_REPLY_CODES = ("BUSY", "MISCONF", "NOREPLICAS", "MASTERDOWN", "TRYAGAIN", "LOADING", "READONLY")


def is_outage(exc: BaseException) -> bool:
    """A Redis (or kombu connection) error an outage raises, to wait out; anything else is a bug."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, OperationalError, *OUTAGE_REPLIES)):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(OUTAGE_REPLY_CODES)

Handler = Callable[[dict[str, Any]], object]


class Settlement(Protocol):
    """How the broker side ends one event; each raises, leaving the event held, when it cannot."""

    def ack(self) -> None: ...

    def retry(self, retries: int) -> None:
        """The event again on its queue with this retry count, and the original acked."""

    def dead(self, record: dict[str, Any]) -> None:
        """The dead record on `<queue>.dead`, and the original acked."""


class EventHandling:
    def __init__(
        self,
        handler: Handler,
        *,
        queue: str,
        dead_queue: str,
        store: redis.Redis,
        max_retries: int,
        should_stop: Callable[[], bool],
    ) -> None:
        self.handler = handler
        self.handler_name = handler_name(handler)
        self.queue = queue
        self.dead_queue = dead_queue
        self.store = store
        self.max_retries = max_retries
        self._should_stop = should_stop

    def handle(self, body: Any, retries: int, settle: Settlement) -> None:
        try:
            eid = event_id(body)
        except PayloadError as exc:
            log.warning("unreadable event on %s (%s): to %s", self.queue, type(exc).__name__, self.dead_queue)
            self.to_dead(body, exc, retries, settle)
            return
        handled = keys.handled(self.queue, self.handler_name, eid)
        if self._store(self.store.exists, handled):
            log.info("event %s already handled by %s: skipped", eid, self.handler_name)
            settle.ack()
            return
        try:
            self.handler(body)
        except Exception as exc:
            self._failed(body, eid, exc, retries, settle)
            return
        try:
            self._store(self.store.set, handled, "1", nx=True, ex=HANDLED_TTL)
        except Exception as exc:
            if not is_outage(exc):
                raise
            # Acking anyway: the event was handled. Only a redelivery (an ack that fails too) repeats it.
            log.error("event %s handled but not recorded (%s)", eid, type(exc).__name__)
        settle.ack()

    def undecodable(self, raw: Any, exc: Exception, retries: int, settle: Settlement) -> None:
        """Not JSON, or a content type we do not accept (pickle never is): no handler can read it."""
        log.warning("undecodable event on %s (%s): to %s", self.queue, type(exc).__name__, self.dead_queue)
        body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        self.to_dead(body, exc, retries, settle)

    def to_dead(self, event: Any, exc: Exception, retries: int, settle: Settlement) -> None:
        settle.dead(dead_record(event=event, error=describe_error(exc), handler=self.handler_name,
                                queue=self.queue, retries=retries))  # fmt: skip

    def _failed(self, body: Any, eid: str, exc: Exception, retries: int, settle: Settlement) -> None:
        if retries < self.max_retries:
            log.warning("handler %s failed on event %s (%s): retry %d of %d",
                        self.handler_name, eid, type(exc).__name__, retries + 1, self.max_retries)  # fmt: skip
            settle.retry(retries + 1)
            return
        log.error("handler %s failed on event %s (%s) after %d retries: to %s",
                  self.handler_name, eid, type(exc).__name__, retries, self.dead_queue)  # fmt: skip
        self.to_dead(body, exc, retries, settle)

    def _store(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A store call that waits out a Redis restart (up to STORE_PATIENCE), so that a handler that
        returned is recorded rather than run again."""
        deadline = time.monotonic() + STORE_PATIENCE
        delay = 0.1
        while True:
            try:
                return call(*args, **kwargs)
            except Exception as exc:
                if not is_outage(exc) or time.monotonic() >= deadline or self._should_stop():
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
