"""Giving back the events a consumer held when its broker connection broke.

RabbitMQ needs nothing from us: it requeues a dropped connection's unacked messages itself.

kombu's Redis transport emulates acks: a delivered message sits in the `unacked` hash until acked,
and only comes back after the visibility timeout (an hour: CoreSettings.broker_transport_options), or
when its channel closes cleanly, which cannot happen while Redis is down. So after a Redis restart
the events we were handling would wait an hour. Instead we remember the delivery tags we hold, and
once reconnected restore exactly those (restore_by_tag: a transaction that does nothing for a tag
already acked or restored). Only our own tags: restoring the whole hash would hand other consumers'
in-flight events out a second time.

One more window: kombu pops the message (BRPOP) and then records it in the hash; if Redis goes away
between the two, the message exists only in our memory. The channel's QoS.append is wrapped so that
such a message is kept and pushed back on reconnect. If the record did reach Redis after all (only
its reply was lost), the event exists twice; the handled key makes the second a no-op.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.message import Message

__all__ = ["UnackedRecovery"]

log = logging.getLogger("lightsms_queue.consumers")


class UnackedRecovery:
    def __init__(self) -> None:
        self._held: dict[Any, None] = {}  # delivery tags, in delivery order
        self._orphans: list[tuple[dict[str, Any], str, str]] = []  # (raw payload, exchange, routing key)

    def hold(self, message: Message) -> None:
        self._held[message.delivery_tag] = None

    def settled(self, message: Message) -> None:
        self._held.pop(message.delivery_tag, None)

    def attach(self, channel: Any, connection_errors: tuple[type[BaseException], ...]) -> None:
        """Wrap a Redis channel's QoS.append to keep a message whose unacked record failed."""
        if not _emulates_acks(channel):
            return
        qos = channel.qos
        append = qos.append

        def guarded_append(message: Message, delivery_tag: Any) -> None:
            try:
                append(message, delivery_tag)
            except connection_errors:
                info = message.delivery_info
                self._orphans.append((message._raw, info["exchange"], info["routing_key"]))  # type: ignore[attr-defined]
                raise

        qos.append = guarded_append

    def restore(self, channel: Any) -> int:
        """On a fresh connection: put back what the old one held; return how many."""
        held, orphans = list(self._held), list(self._orphans)
        if not _emulates_acks(channel):
            self._held.clear()  # the broker requeued them when the connection dropped
            return len(held)
        # Front of the queue (kombu restores unacked messages the same way), oldest delivered first out.
        for tag in reversed(held):
            channel.qos.restore_by_tag(tag, leftmost=False)
            self._held.pop(tag, None)
        for payload, exchange, routing_key in orphans:
            with channel.conn_or_acquire() as client:
                pipe = client.pipeline()
                channel._do_restore_message(payload, exchange, routing_key, pipe, leftmost=False)
                pipe.execute()
            self._orphans.remove((payload, exchange, routing_key))
        return len(held) + len(orphans)


def _emulates_acks(channel: Any) -> bool:
    """kombu's Redis transport (its virtual channels keep unacked messages themselves); an AMQP
    channel has no `qos` at all."""
    return hasattr(getattr(channel, "qos", None), "restore_by_tag")
