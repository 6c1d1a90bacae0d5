"""Consumers against the session's real Redis (broker and store in one, database 0)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis as redis_lib
from kombu import Connection

from consumers.api import build_consumer
from consumers.redis_consumer import RedisEventConsumer
from core import keys
from core.contract import dead_queue_name, event_queue, inbound_event
from core.events import EventPublisher, broker_connection
from core.settings import CoreSettings, load_core_settings
from devtools.polling import wait_until


@pytest.fixture
def settings(redis_server, redis_client, monkeypatch) -> CoreSettings:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    return load_core_settings()


@pytest.fixture
def connection(settings: CoreSettings) -> Iterator[Connection]:
    conn = broker_connection(settings)
    yield conn
    conn.release()


@pytest.fixture
def publish(connection: Connection) -> Iterator[Callable[..., None]]:
    publisher = EventPublisher(connection.clone())

    def publish(event: dict[str, Any], queue: str = "sms.inbound", **headers: Any) -> None:
        publisher.publish(event_queue(queue), event, headers=headers)

    yield publish
    publisher.close()


def sms(n: int, text: str = "hello") -> dict[str, Any]:
    return inbound_event(sms_id=f"in-{n}", received_at="2026-03-01T10:00:00+02:00", sender=f"3706100{n:04d}",
                         phone="5163251632", prefix=None, text=text)  # fmt: skip


def depth(client: redis_lib.Redis, queue: str) -> int:
    """Messages waiting on a queue of kombu's Redis transport (a list named as the queue)."""
    return int(client.llen(queue))


def dead_depth(client: redis_lib.Redis, queue: str = "sms.inbound") -> int:
    return depth(client, dead_queue_name(queue))


@contextmanager
def running(
    handler: Callable[[dict[str, Any]], object], settings: CoreSettings, **options: Any
) -> Iterator[RedisEventConsumer]:
    """A consumer on the test Redis in a thread of this process, stopped (and joined) on exit."""
    consumer = build_consumer(handler, settings=settings, **options)
    assert isinstance(consumer, RedisEventConsumer)
    consumer.poll_seconds = 0.1  # stopping waits for the take in flight (a second by default)
    thread = threading.Thread(target=consumer.run, name="consumer", daemon=True)
    thread.start()
    try:
        yield consumer
    finally:
        consumer.stop()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the consumer did not stop"
        consumer.close()


def held(client: redis_lib.Redis, queue: str = "sms.inbound") -> int:
    """Events consumers took off `queue` and have not settled (their held lists)."""
    return sum(int(client.llen(key)) for key in client.scan_iter(keys.consumer_held(queue, "*")))


def settled(client: redis_lib.Redis, queue: str = "sms.inbound") -> bool:
    """Nothing waiting on the queue and nothing held unsettled (kombu's unacked hash included)."""
    return depth(client, queue) == 0 and held(client, queue) == 0 and client.hlen("unacked") == 0


def wait_settled(client: redis_lib.Redis, queue: str = "sms.inbound", timeout: float = 10) -> None:
    wait_until(lambda: settled(client, queue), timeout=timeout, message=f"{queue} to drain and every event acked")
