"""`<queue>.dead`: list, requeue, purge.

On a Redis broker the dead queue is a list read in place: list reads it (LRANGE) and changes nothing,
and requeue moves each record's event with one script (dead_requeue.lua), so that no moment exists
where a record is in no list (kombu's get pops, and a Redis killed before its reply loses it).

RabbitMQ has no "peek", so there list takes every record without acking it and then gives each back
with reject(requeue=True), in the order taken: RabbitMQ puts a requeued message back in its place,
and the queue ends as it began. A crash midway loses nothing: RabbitMQ gives unacked messages back.
"""

from __future__ import annotations

import builtins
import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from kombu import Connection, Producer
from kombu.message import Message
from redis.commands.core import Script

from core.contract import dead_queue_name, event_queue
from core.store import load_script

from .redis_envelope import EnvelopeError, new_envelope, read_envelope

__all__ = ["DeadLetters"]

log = logging.getLogger("lightsms_queue.consumers")
PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}


class DeadLetters:
    """The dead records of one event queue (`queue`, e.g. "sms.inbound": the records live on
    "sms.inbound.dead")."""

    def __init__(self, connection: Connection, queue: str) -> None:
        self.connection = connection
        self.queue = event_queue(queue)
        self.dead = event_queue(dead_queue_name(queue))
        self._on_redis = connection.transport.driver_type == "redis"

    def list(self) -> list[dict[str, Any]]:
        """Every dead record, oldest first; the queue is left exactly as it was. A message that is
        not a JSON object is shown as {"unreadable": <its text>}."""
        if self._on_redis:
            return [_listed(raw) for raw in self._redis_records()]
        with self._taken() as taken:
            return [_record(message) for message in taken]

    def requeue(self) -> int:
        """Put each dead record's event back on its queue with a fresh retry count, and remove the
        record; returns how many. A record without an event stays where it is."""
        if self._on_redis:
            return self._redis_requeue()
        moved = 0
        with self._taken() as taken:
            producer = Producer(self.connection.default_channel, serializer="json")
            publish = self.connection.ensure(producer, producer.publish, **PUBLISH_RETRY)
            declare = [self.queue]
            for message in taken:
                record = _record(message)
                if "event" not in record:
                    continue  # given back with the rest when _taken ends
                publish(record["event"], exchange=self.queue.exchange, routing_key=self.queue.routing_key,
                        declare=declare, delivery_mode=2)  # fmt: skip
                declare = []
                message.ack()  # only once the event is back on its queue
                moved += 1
        return moved

    def purge(self) -> int:
        """Remove every dead record; returns how many."""
        bound = self.dead(self.connection.default_channel)
        bound.declare()  # RabbitMQ refuses to purge a queue never declared
        return int(bound.purge() or 0)

    # -- a Redis broker: the list read in place ------------------------------------------------

    @functools.cached_property
    def _redis(self) -> tuple[redis.Redis, str, Script]:
        """A client on kombu's own pool (the broker URL's every form), kombu's key prefix, and the
        script that moves a record."""
        channel: Any = self.connection.default_channel
        client = redis.Redis(connection_pool=channel.pool)
        return client, channel.global_keyprefix or "", client.register_script(load_script("dead_requeue.lua"))

    def _redis_records(self) -> builtins.list[bytes]:
        client, prefix, _ = self._redis
        raws = client.lrange(prefix + self.dead.name, 0, -1)
        # kombu takes from the right end: that is the oldest record.
        return [raw if isinstance(raw, bytes) else raw.encode() for raw in reversed(raws)]

    def _redis_requeue(self) -> int:
        return sum(self._redis_move(raw) for raw in self._redis_records())

    def _redis_move(self, raw: bytes) -> int:
        """1 when this record's event went back on its queue, 0 when it has none or is gone."""
        record = _listed(raw)
        if "event" not in record:
            return 0  # stays where it is
        _, prefix, move = self._redis
        message = new_envelope(record["event"], self.queue.name)
        return int(move(keys=[prefix + self.dead.name, prefix + self.queue.name], args=[raw, message]))

    # -- RabbitMQ: taken unacked and given back ------------------------------------------------

    @contextmanager
    def _taken(self) -> Iterator[builtins.list[Message]]:
        """Every message of the dead queue, taken unacked; those not acked are given back in order."""
        bound = self.dead(self.connection.default_channel)
        bound.declare()
        taken: builtins.list[Message] = []
        try:
            while (message := bound.get(no_ack=False, accept=["json"])) is not None:
                taken.append(message)
            yield taken
        finally:
            for message in taken:
                if not message.acknowledged:
                    message.requeue()


def _listed(raw: bytes) -> dict[str, Any]:
    """A record as a Redis list holds it (kombu's envelope), read as _record reads a message."""
    try:
        envelope = read_envelope(raw)
    except EnvelopeError:
        return _shown(lambda: None, raw)
    return _shown(envelope.decode, envelope.body)


def _record(message: Message) -> dict[str, Any]:
    return _shown(message.decode, message.body)


def _shown(decode: Callable[[], Any], body: bytes | str) -> dict[str, Any]:
    """The record when it decodes to a JSON object, else {"unreadable": <its text>}: still listed, never lost."""
    try:
        decoded = decode()
    except Exception:  # undecodable, or not JSON
        decoded = None
    if isinstance(decoded, dict):
        return decoded
    return {"unreadable": body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)}
