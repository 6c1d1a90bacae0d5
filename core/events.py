"""Publishing events (core.contract's schemas) on the broker with plain kombu.

One connection per publisher, kept open and re-established on failure. A publish returns only once
the broker has the event: on RabbitMQ with publisher confirms, on Redis once the push succeeded. It
raises after a few quick retries, so that a poller leaves its cursor where it was and reads the same
window again next time.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from kombu import Connection, Queue

from .settings import CoreSettings

__all__ = ["EventPublisher", "broker_connection"]

# A few quick retries ride out a broker blip; a longer outage is the next poll's business.
PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}
# Consumers ack after the handler returns; an event a dead consumer held comes back after this long
# on Redis (RabbitMQ redelivers at once when the connection drops).
EVENT_VISIBILITY_TIMEOUT = 3600


def broker_connection(settings: CoreSettings) -> Connection:
    """A kombu connection to CELERY_BROKER_URL (or REDIS_URL), not yet connected."""
    url = settings.broker_url
    options: dict[str, Any] = {"visibility_timeout": EVENT_VISIBILITY_TIMEOUT}
    if url.split("://", 1)[0].lower().startswith(("amqp", "pyamqp")):
        options = {"confirm_publish": True}  # publish returns once RabbitMQ has the message
    return Connection(url, transport_options=options, connect_timeout=5)


class EventPublisher:
    """Thread-safe: publishes are serialised on one connection."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._lock = threading.Lock()
        self._declared: set[str] = set()

    def publish(self, queue: Queue, event: Mapping[str, Any], *, headers: Mapping[str, Any] | None = None) -> None:
        """Publish one JSON event to `queue` (declared on first use); raises when the broker cannot
        be reached within PUBLISH_RETRY."""
        with self._lock:
            producer = self.connection.Producer(serializer="json")
            declare = [] if queue.name in self._declared else [queue]
            publish = self.connection.ensure(producer, producer.publish, **PUBLISH_RETRY)
            publish(
                dict(event),
                exchange=queue.exchange,
                routing_key=queue.routing_key,
                declare=declare,
                delivery_mode=2,
                headers=dict(headers or {}),
            )  # no content_type here: kombu would take the dict as already serialised, and fail
            self._declared.add(queue.name)

    def close(self) -> None:
        with self._lock:
            self.connection.release()
