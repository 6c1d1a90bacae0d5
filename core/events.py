"""Publishing events (core.contract's schemas) on the broker with plain kombu.

One connection per publisher, kept open and re-established on failure. A publish returns only once
the broker has the event: on RabbitMQ with publisher confirms, on Redis once the push succeeded. It
raises after a few quick retries, so that a poller leaves its cursor where it was and reads the same
window again next time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from kombu import Connection, Producer, Queue

from .kombu_publish import reuse_publish_client
from .settings import CoreSettings

__all__ = ["EventPublisher", "broker_connection"]

# A few quick retries ride out a broker blip; a longer outage is the next poll's business.
PUBLISH_DELAYS = (0.2, 0.5, 1.0)


def broker_connection(settings: CoreSettings) -> Connection:
    """A kombu connection to CELERY_BROKER_URL (or REDIS_URL), not yet connected."""
    url = settings.broker_url
    options: dict[str, Any] = settings.broker_transport_options
    if url.split("://", 1)[0].lower().startswith(("amqp", "pyamqp")):
        options["confirm_publish"] = True  # publish returns once RabbitMQ has the message
    return Connection(url, transport_options=options, connect_timeout=5)


class EventPublisher:
    """Thread-safe: publishes are serialised on one connection."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._lock = threading.Lock()
        self._declared: set[str] = set()
        self._producer: Producer | None = None  # on the current connection's channel

    def publish(self, queue: Queue, event: Mapping[str, Any], *, headers: Mapping[str, Any] | None = None) -> None:
        """Publish one JSON event to `queue` (declared on first use, and again after a reconnect);
        raises when the broker cannot take it within PUBLISH_DELAYS."""
        with self._lock:
            for delay in (*PUBLISH_DELAYS, None):
                try:
                    self._publish_once(queue, event, headers)
                    return
                except self.connection.connection_errors + self.connection.channel_errors:
                    # A connection a broker restart broke: drop it (the next use connects afresh) and
                    # declare again, since a broker that came back empty has lost the queue too.
                    self._producer = None
                    self._declared.clear()
                    self.connection.collect()
                    if delay is None:
                        raise
                    time.sleep(delay)

    def _publish_once(self, queue: Queue, event: Mapping[str, Any], headers: Mapping[str, Any] | None) -> None:
        producer = self._producer
        if producer is None:  # a new connection (see publish): one producer, and one Redis client on
            reuse_publish_client(self.connection.default_channel)  # its channel, not one per event
            producer = self._producer = self.connection.Producer(serializer="json")
        # Through the default exchange, routed by the queue's name: it needs no binding. A Redis
        # broker that restarted empty has lost kombu's binding set, and a publish through the
        # queue's own exchange would then be dropped without a word, yet return.
        producer.publish(
            dict(event),
            exchange="",
            routing_key=queue.name,
            declare=[] if queue.name in self._declared else [queue],
            delivery_mode=2,
            headers=dict(headers or {}),
        )  # no content_type here: kombu would take the dict as already serialised, and fail
        self._declared.add(queue.name)

    def close(self) -> None:
        with self._lock:
            self._producer = None  # a publish after close starts on a connection of its own
            self._declared.clear()
            self.connection.release()
