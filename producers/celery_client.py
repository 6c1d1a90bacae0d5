"""A minimal Celery app for enqueueing: JSON only, task routing by priority queue."""

from __future__ import annotations

from typing import Any

import redis
from celery import Celery

from core.contract import EXCHANGE, QUEUES, SEND_TASK, send_payload
from core.kombu_publish import NotRecorded, recording, reuse_publish_client
from core.settings import CoreSettings
from core.states import Priority

ARGSREPR_MAX = 1024  # Celery's amqp.argsrepr_maxsize


def celery_config(settings: CoreSettings) -> dict[str, object]:
    """The broker settings producers and workers share."""
    return {
        "broker_url": settings.broker_url,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "task_queues": QUEUES,
        "task_default_exchange": EXCHANGE.name,
        "task_default_queue": Priority.NORMAL.queue,
        "task_default_routing_key": Priority.NORMAL.queue,
        "broker_transport_options": settings.broker_transport_options,
        "broker_connection_retry_on_startup": True,
        # A channel error (a Sentinel failover, a RabbitMQ channel closed) is retried like a lost connection.
        "broker_channel_error_retry": True,
    }


def make_producer_app(settings: CoreSettings) -> Celery:
    app = Celery("lightsms-producer", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


class Dispatcher:
    """Publishes send tasks: one per batch of at most `batch_size` message ids."""

    def __init__(self, app: Celery, *, batch_size: int) -> None:
        self.app = app
        self.batch_size = batch_size

    def waiting(self, priority: str) -> int:
        """Tasks waiting in a priority's queue (not those already reserved by a worker)."""
        with self.app.connection_for_write() as connection:
            try:
                return int(connection.default_channel.queue_declare(Priority(priority).queue, passive=True)[1])
            except connection.channel_errors:
                return 0  # the queue does not exist yet, or (Redis) is empty

    def enqueue(self, message_ids: list[str], priority: str) -> int:
        with self.app.producer_or_acquire() as producer:
            reuse_publish_client(producer.channel)
            return self._publish(producer, message_ids, priority)

    def recorded(self, message_ids: list[str], priority: str, *, store: redis.Redis) -> list[tuple[str, str]] | None:
        """The broker writes enqueue() would make, as (list, payload) pairs, recorded instead of made:
        for the store to make in the same call as the records (Store.create's `publish`). None when
        the broker is not the store's own Redis server and database (another broker, another Redis,
        a key prefix, sentinels) or kombu published otherwise than by LPUSH: then store, and enqueue().
        Also None before the broker connection is first made: making it here, ahead of the records,
        would hold a send() in kombu's connection retries while Redis is away, where the store fails
        at once (enqueue() after the records makes it, as before)."""
        with self.app.producer_or_acquire() as producer:
            if producer.connection.transport.driver_type != "redis" or not producer.connection.connected:
                return None
            channel = producer.channel
            if not _same_redis(channel, store):
                return None
            with recording(channel) as writes:
                try:
                    self._publish(producer, message_ids, priority)
                except NotRecorded:
                    return None
            return writes or None

    def _publish(self, producer: Any, message_ids: list[str], priority: str) -> int:
        queue = Priority(priority).queue
        batches = [message_ids[i : i + self.batch_size] for i in range(0, len(message_ids), self.batch_size)]
        # On Redis a task goes to its queue's list by name (Celery's anonymous exchange for a
        # direct queue): nothing to declare first, and kombu's check that it was declared cost
        # as much Python as the publish itself. Another broker declares the queue as before.
        options: dict[str, Any] = {"declare": []} if producer.connection.transport.driver_type == "redis" else {}
        for batch in batches:
            args = [send_payload(batch)]
            self.app.send_task(
                SEND_TASK, args=args, queue=queue, routing_key=queue, producer=producer,
                argsrepr=shown(args), kwargsrepr="{}", **options,
            )  # fmt: skip
        return len(batches)


def _same_redis(channel: Any, store: redis.Redis) -> bool:
    """Whether kombu's channel writes to the store's own Redis server and database, as the same user
    (another may hold other key rights: the script would be refused) and unprefixed: only then may
    the store's script push its tasks. (Sentinel pools name no host: never the same here.)"""
    if getattr(channel, "global_keyprefix", ""):
        return False
    try:
        broker = channel.client.connection_pool.connection_kwargs
    except AttributeError:
        return False
    ours = store.connection_pool.connection_kwargs
    where = ("host", "port", "path", "db", "username", "password")
    return bool(broker.get("host") or broker.get("path")) and all(broker.get(k) == ours.get(k) for k in where)


def shown(args: list[Any]) -> str:
    """The task's arguments as Flower and the logs show them (message ids only), cut at Celery's
    own 1,024 characters: what Celery's saferepr would give, for a fraction of its cost."""
    text = repr(args)
    return text if len(text) <= ARGSREPR_MAX else text[: ARGSREPR_MAX - 3] + "..."
