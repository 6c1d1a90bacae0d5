"""EventConsumer: one handler over one event queue on RabbitMQ, on kombu's ConsumerProducerMixin
(a Redis broker has its own consumer: redis_consumer.py). One event's path is handling.py's.

RabbitMQ gives a dropped connection's unacked messages back by itself, so an outage needs nothing
from us but a reconnect. Republishing goes over a connection of its own (ConsumerProducerMixin): a
publish waits for its confirm, and waiting on the consuming connection could dispatch the next
delivery inside the current one.
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

from core.contract import dead_queue_name, event_queue
from core.errors import ConfigError

from .failures import RETRIES_HEADER, retries_of
from .handling import EventHandling, Handler, is_outage
from .lifecycle import Lifecycle

__all__ = ["EventConsumer"]

log = logging.getLogger("lightsms_queue.consumers")

PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}
# Reconnecting to the broker: quick at first (a restart takes a second), then every few seconds.
RECONNECT = {"interval_start": 0.2, "interval_step": 0.5, "interval_max": 3.0}


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
        if connection.transport.driver_type == "redis":
            # kombu's Redis consumer can lose an event to a Redis killed mid-pop: not ours to use.
            raise ConfigError("a Redis broker has its own consumer: consumers.redis_consumer.RedisEventConsumer")
        self.connection = connection
        self.queue: Queue = event_queue(queue)
        self.dead_queue: Queue = event_queue(dead_queue_name(queue))
        self.store = store
        self.prefetch = prefetch
        self.lifecycle = Lifecycle(should_stop)
        self._declared: set[str] = set()
        self._held: set[Any] = set()  # delivery tags: the broker gives them back when the connection drops
        self.handling = EventHandling(handler, queue=self.queue.name, dead_queue=self.dead_queue.name, store=store,
                                      max_retries=max_retries, should_stop=lambda: self.should_stop)  # fmt: skip

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def should_stop(self) -> bool:  # type: ignore[override]  # ConsumerMixin reads it between events
        return self.lifecycle.stopping

    def stop(self) -> None:
        """Finish the event in hand, then return from run() (safe from a signal handler)."""
        self.lifecycle.stop()

    def run(self, _tokens: int = 1, **kwargs: Any) -> None:
        """Consume until stopped, reconnecting after every broker or store outage."""
        errors = (*self.connection.connection_errors, *self.connection.channel_errors)
        while not self.should_stop:
            try:
                if self.restart_limit.can_consume(_tokens):
                    for _ in self.consume(limit=None, **kwargs):
                        pass
                else:
                    time.sleep(self.restart_limit.expected_time(_tokens))
            except _Stopping:
                break
            except Exception as exc:
                if not (isinstance(exc, errors) or is_outage(exc)):
                    raise
                self.lifecycle.lost(exc)
        log.info("consumer of %s stopped", self.queue.name)

    def close(self) -> None:
        # The republishing connection too: on_consume_end closes it only after a clean stop.
        self.on_consume_end(self.connection, None)
        self.connection.release()
        self.store.close()

    @contextmanager
    def establish_connection(self) -> Iterator[Connection]:
        with self.create_connection() as conn:
            conn.ensure_connection(self.on_connection_error, self.connect_max_retries, **RECONNECT)
            yield conn

    def on_connection_error(self, exc: BaseException, interval: float) -> None:
        if self.should_stop:
            raise _Stopping()
        self.lifecycle.lost(exc)

    def get_consumers(self, consumer: Callable[..., Consumer], channel: Any) -> list[Consumer]:
        return [consumer(queues=[self.queue], callbacks=[self.on_message], accept=["json"],
                         prefetch_count=self.prefetch)]  # fmt: skip

    def on_consume_ready(self, connection: Connection, channel: Any, consumers: list[Consumer], **kw: Any) -> None:
        self.lifecycle.back(len(self._held))  # RabbitMQ gave them back when the connection dropped
        self._held.clear()
        log.info("consuming %s with %s (prefetch %d, max retries %d)", self.queue.name,
                 self.handling.handler_name, self.prefetch, self.handling.max_retries)  # fmt: skip

    # -- one event -------------------------------------------------------------------------------

    def on_message(self, body: Any, message: Message) -> None:
        self._held.add(message.delivery_tag)
        self.handling.handle(body, retries_of(message.headers), _Settlement(self, message))

    def on_decode_error(self, message: Message, exc: Exception) -> None:
        self._held.add(message.delivery_tag)
        self.handling.undecodable(message.body, exc, retries_of(message.headers), _Settlement(self, message))

    def publish(self, message: Message, queue: Queue, body: Any, **options: Any) -> None:
        """Publish on the producer connection; on failure give the original back, then raise."""
        producer = self.producer
        publish = self.producer_connection.ensure(producer, producer.publish, **PUBLISH_RETRY)
        try:
            # The default exchange needs no binding (see core/events.py).
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
        except Exception as exc:  # the connection is gone too: the broker gives it back
            log.warning("could not requeue the event (%s)", type(exc).__name__)
        else:
            self._held.discard(message.delivery_tag)

    def ack(self, message: Message) -> None:
        message.ack()
        self._held.discard(message.delivery_tag)


class _Settlement:
    def __init__(self, consumer: EventConsumer, message: Message) -> None:
        self.consumer = consumer
        self.message = message

    def ack(self) -> None:
        self.consumer.ack(self.message)

    def retry(self, retries: int) -> None:
        message = self.message
        self.consumer.publish(message, self.consumer.queue, message.body, content_type=message.content_type,
                              content_encoding=message.content_encoding, headers={RETRIES_HEADER: retries})  # fmt: skip
        self.ack()

    def dead(self, record: dict[str, Any]) -> None:
        self.consumer.publish(self.message, self.consumer.dead_queue, record, serializer="json")
        self.ack()
