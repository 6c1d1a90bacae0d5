"""`<queue>.dead`: list, requeue, purge, with plain kombu (the Redis broker and RabbitMQ alike).

A queue has no "peek" in AMQP, so list takes every record without acking it and then gives each
back with reject(requeue=True), in the order taken: RabbitMQ puts a requeued message back in its
place, and kombu's Redis transport pushes it to the far end of the (by then empty) list, so either
way the queue ends as it began. Nothing else consumes a dead queue; a crash midway loses nothing
(unacked messages come back by themselves), though on Redis they may come back reordered.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu import Connection, Producer
from kombu.message import Message

from core.contract import dead_queue_name, event_queue

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

    def list(self) -> list[dict[str, Any]]:
        """Every dead record, oldest first; the queue is left exactly as it was. A message that is
        not a JSON object is shown as {"unreadable": <its text>}."""
        with self._taken() as taken:
            return [_record(message) for message in taken]

    def requeue(self) -> int:
        """Put each dead record's event back on its queue with a fresh retry count, and remove the
        record; returns how many. A record without an event stays where it is."""
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


def _record(message: Message) -> dict[str, Any]:
    try:
        decoded = message.decode()
    except Exception:  # undecodable or not JSON: still listed, never lost
        decoded = None
    if isinstance(decoded, dict):
        return decoded
    raw = message.body
    return {"unreadable": raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)}
