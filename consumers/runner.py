"""EventConsumer: one handler over one event queue, on kombu's ConsumerMixin.

For each event, in this order:
1. its id (core.contract.event_id); an event that cannot be read goes straight to `<queue>.dead`;
2. the handled key (core.keys.handled) exists → the handler already returned for it: ack, skip;
3. the handler runs; it returned → the handled key is set (NX, 7 days), then the event is acked;
4. it raised → the event is published again on its queue with the retry count (a message header)
   plus one, or, once the count reached max_retries, to `<queue>.dead` with the error and the
   handler's name; only after that publish succeeded is the original acked.

So an event is acked only once its outcome is safe somewhere, and a publish or ack that fails leaves
it unacked: the broker gives it back (RabbitMQ when the connection drops; on Redis we restore what
we held when we reconnect, see recovery.py). Delivery is at least once, which is why handlers must be
idempotent by event id; the handled key makes a redelivery after a successful return a no-op.

Republishing goes over a connection of its own (ConsumerProducerMixin): on RabbitMQ a publish waits
for its confirm, and waiting on the consuming connection could dispatch the next delivery inside
the current one. Logs carry event ids, queue and handler names and error types, never event text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from kombu import Connection, Consumer, Queue
from kombu.message import Message
from kombu.mixins import ConsumerProducerMixin

from core import keys
from core.contract import dead_queue_name, event_id, event_queue
from core.errors import PayloadError

from .failures import RETRIES_HEADER, dead_record, describe_error, handler_name, retries_of
from .recovery import UnackedRecovery

__all__ = ["EventConsumer", "HANDLED_TTL"]

log = logging.getLogger("lightsms_queue.consumers")

HANDLED_TTL = 7 * 24 * 3600  # a redelivery comes within minutes or hours; a week is plenty
# Redis (the store) down: wait this long for it around a handler before giving up on the event.
STORE_PATIENCE = 60.0
PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}
# Reconnecting to the broker: quick at first (a restart takes a second), then every few seconds.
RECONNECT = {"interval_start": 0.2, "interval_step": 0.5, "interval_max": 3.0}
STORE_ERRORS = (redis.ConnectionError, redis.TimeoutError)

Handler = Callable[[dict[str, Any]], object]


class _Stopping(Exception):
    """Raised from a reconnect wait when the consumer was asked to stop."""


class EventConsumer(ConsumerProducerMixin):
    def __init__(
        self,
        connection: Connection,
        handler: Handler,
        *,
        queue: str,
        store: redis.Redis,
        max_retries: int,
        prefetch: int,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.connection = connection
        self.handler = handler
        self.handler_name = handler_name(handler)
        self.queue: Queue = event_queue(queue)
        self.dead_queue: Queue = event_queue(dead_queue_name(queue))
        self.store = store
        self.max_retries = max_retries
        self.prefetch = prefetch
        self._should_stop = should_stop
        self._stop_requested = False
        self._declared: set[str] = set()
        self._recovery = UnackedRecovery()
        self._outage_since: float | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def should_stop(self) -> bool:  # type: ignore[override]  # ConsumerMixin reads it between events
        return self._stop_requested or bool(self._should_stop and self._should_stop())

    def stop(self) -> None:
        """Finish the event in hand, then return from run() (safe from a signal handler)."""
        self._stop_requested = True

    def run(self, _tokens: int = 1, **kwargs: Any) -> None:
        """Consume until stopped, reconnecting after every broker or store outage."""
        errors = (*self.connection.connection_errors, *self.connection.channel_errors, *STORE_ERRORS)
        while not self.should_stop:
            try:
                if self.restart_limit.can_consume(_tokens):
                    for _ in self.consume(limit=None, **kwargs):
                        pass
                else:
                    time.sleep(self.restart_limit.expected_time(_tokens))
            except _Stopping:
                break
            except errors as exc:
                self._lost(exc)
        log.info("consumer of %s stopped", self.queue.name)

    @contextmanager
    def establish_connection(self) -> Iterator[Connection]:
        with self.create_connection() as conn:
            conn.ensure_connection(self.on_connection_error, self.connect_max_retries, **RECONNECT)
            yield conn

    def on_connection_error(self, exc: BaseException, interval: float) -> None:
        if self.should_stop:
            raise _Stopping()
        self._lost(exc)

    def _lost(self, exc: BaseException) -> None:
        # One line per outage, not one per reconnect attempt (and no traceback: it is not a bug).
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.warning("broker connection lost (%s); reconnecting", type(exc).__name__)

    def get_consumers(self, consumer: Callable[..., Consumer], channel: Any) -> list[Consumer]:
        return [consumer(queues=[self.queue], callbacks=[self.on_message], accept=["json"],
                         prefetch_count=self.prefetch)]  # fmt: skip

    def on_consume_ready(self, connection: Connection, channel: Any, consumers: list[Consumer], **kw: Any) -> None:
        self._recovery.attach(channel, connection.connection_errors)
        restored = self._recovery.restore(channel)
        if self._outage_since is not None:
            took = time.monotonic() - self._outage_since
            log.warning("broker connection back after %.1fs; %d held event(s) given back", took, restored)
            self._outage_since = None
        log.info("consuming %s with %s (prefetch %d, max retries %d)",
                 self.queue.name, self.handler_name, self.prefetch, self.max_retries)  # fmt: skip

    # -- one event -------------------------------------------------------------------------------

    def on_message(self, body: Any, message: Message) -> None:
        self._recovery.hold(message)
        retries = retries_of(message.headers)
        try:
            eid = event_id(body)
        except PayloadError as exc:
            log.warning("unreadable event on %s (%s): to %s", self.queue.name, type(exc).__name__, self.dead_queue.name)
            self._to_dead(message, body, describe_error(exc), retries)
            return
        handled = keys.handled(self.queue.name, self.handler_name, eid)
        if self._store(self.store.exists, handled):
            log.info("event %s already handled by %s: skipped", eid, self.handler_name)
            self._ack(message)
            return
        try:
            self.handler(body)
        except Exception as exc:
            self._failed(message, body, eid, exc, retries)
            return
        try:
            self._store(self.store.set, handled, "1", nx=True, ex=HANDLED_TTL)
        except STORE_ERRORS as exc:
            # Acking anyway: the event was handled. Only a redelivery (an ack that fails too) repeats it.
            log.error("event %s handled but not recorded (%s)", eid, type(exc).__name__)
        self._ack(message)

    def on_decode_error(self, message: Message, exc: Exception) -> None:
        # Not JSON, or a content type we do not accept (pickle never is): no handler can read it.
        log.warning("undecodable event on %s (%s): to %s", self.queue.name, type(exc).__name__, self.dead_queue.name)
        self._recovery.hold(message)
        raw = message.body
        body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        self._to_dead(message, body, describe_error(exc), retries_of(message.headers))

    def _failed(self, message: Message, body: Any, eid: str, exc: Exception, retries: int) -> None:
        if retries < self.max_retries:
            log.warning("handler %s failed on event %s (%s): retry %d of %d",
                        self.handler_name, eid, type(exc).__name__, retries + 1, self.max_retries)  # fmt: skip
            self._publish(message, self.queue, message.body, content_type=message.content_type,
                          content_encoding=message.content_encoding, headers={RETRIES_HEADER: retries + 1})  # fmt: skip
            self._ack(message)
            return
        log.error("handler %s failed on event %s (%s) after %d retries: to %s",
                  self.handler_name, eid, type(exc).__name__, retries, self.dead_queue.name)  # fmt: skip
        self._to_dead(message, body, describe_error(exc), retries)

    def _to_dead(self, message: Message, event: Any, error: str, retries: int) -> None:
        record = dead_record(event=event, error=error, handler=self.handler_name, queue=self.queue.name,
                             retries=retries)  # fmt: skip
        self._publish(message, self.dead_queue, record, serializer="json")
        self._ack(message)

    def _publish(self, message: Message, queue: Queue, body: Any, **options: Any) -> None:
        """Publish on the producer connection; on failure give the original back, then raise."""
        producer = self.producer
        publish = self.producer_connection.ensure(producer, producer.publish, **PUBLISH_RETRY)
        try:
            # The default exchange needs no binding (see core/events.py): never dropped after a broker restart.
            publish(body, exchange="", routing_key=queue.name, delivery_mode=2,
                    declare=[] if queue.name in self._declared else [queue], **options)  # fmt: skip
        except Exception:
            log.error("could not publish to %s: the event stays on %s", queue.name, self.queue.name)
            self._give_back(message)
            raise
        self._declared.add(queue.name)

    def _give_back(self, message: Message) -> None:
        try:
            message.requeue()
        except Exception as exc:  # the connection is gone too: the broker or recovery gives it back
            log.warning("could not requeue the event (%s)", type(exc).__name__)
        else:
            self._recovery.settled(message)

    def _ack(self, message: Message) -> None:
        message.ack()
        self._recovery.settled(message)

    def _store(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A store call that waits out a Redis restart (up to STORE_PATIENCE), so that a handler that
        returned is recorded rather than run again."""
        deadline = time.monotonic() + STORE_PATIENCE
        delay = 0.1
        while True:
            try:
                return call(*args, **kwargs)
            except STORE_ERRORS:
                if time.monotonic() >= deadline or self.should_stop:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
