"""Events published through one Redis client per kombu channel (core/kombu_publish.py): kombu alone
builds one per publish. On a real Redis, through a restart."""

from __future__ import annotations

from kombu import Connection

from core.contract import STATUS_QUEUE
from core.events import EventPublisher
from tests.support.redis_server import RedisServer


def event(n: int) -> dict[str, object]:
    return {"event_id": f"m{n}:DELIVERED", "message_id": f"m{n}", "id_sms": str(n), "status": "DELIVERED",
            "at": "2026-12-01T00:00:00+00:00", "metadata": {}}  # fmt: skip


def counting_clients(publisher: EventPublisher) -> list[object]:
    """The Redis clients the publisher's current channel builds from now on."""
    channel = publisher.connection.default_channel
    made: list[object] = []
    create = channel._create_client

    def counted(*args: object, **kwargs: object) -> object:
        client = create(*args, **kwargs)
        made.append(client)
        return client

    channel._create_client = counted
    return made


def test_events_go_through_one_redis_client_per_channel_and_each_arrives(redis_server, redis_client):
    publisher = EventPublisher(Connection(redis_server.url))
    try:
        made = counting_clients(publisher)
        for n in range(5):
            publisher.publish(STATUS_QUEUE, event(n))
        assert len(made) == 1  # kombu alone builds one for each publish
        assert redis_client.llen(STATUS_QUEUE.name) == 5
    finally:
        publisher.close()


def test_the_kept_client_publishes_again_after_the_broker_restarts():
    with RedisServer() as server:
        publisher = EventPublisher(Connection(server.url))
        try:
            publisher.publish(STATUS_QUEUE, event(0))
            server.restart()  # no AOF: it comes back empty, the first event with it
            publisher.publish(STATUS_QUEUE, event(1))
            publisher.publish(STATUS_QUEUE, event(2))
            assert server.client().llen(STATUS_QUEUE.name) == 2  # both after the restart, none lost
        finally:
            publisher.close()


def test_one_producer_serves_every_event_until_a_publish_fails_then_a_new_one_on_a_new_connection(
    redis_server, redis_client
):
    publisher = EventPublisher(Connection(redis_server.url))
    try:
        publisher.publish(STATUS_QUEUE, event(0))
        kept = publisher._producer
        publisher.publish(STATUS_QUEUE, event(1))
        assert kept is not None and publisher._producer is kept

        def broken(*args: object, **kwargs: object) -> None:
            raise publisher.connection.connection_errors[0]("the connection broke")

        kept.publish = broken  # type: ignore[method-assign]  # its channel's connection broke
        publisher.publish(STATUS_QUEUE, event(2))  # retried once on a new connection, a new producer
        assert publisher._producer is not None and publisher._producer is not kept
        assert redis_client.llen(STATUS_QUEUE.name) == 3  # none lost
    finally:
        publisher.close()
