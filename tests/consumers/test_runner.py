"""EventConsumer in this process against a real Redis broker: ack after return, retries, the dead
queue, the handled key, unreadable events, the decorator form."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import consumers
from consumers.dead_letters import DeadLetters
from consumers.failures import RETRIES_HEADER
from core import keys
from core.contract import event_queue, status_event
from core.events import EventPublisher, broker_connection
from core.settings import load_core_settings
from devtools.polling import wait_until
from tests.consumers.conftest import dead_depth, depth, held, running, settled, sms


def test_an_event_is_acked_only_after_the_handler_returns(settings, redis_client, publish):
    entered, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def slow(event: dict[str, Any]) -> None:
        entered.set()
        release.wait(10)
        seen.append(event["id"])

    publish(sms(1))
    with running(slow, settings):
        assert entered.wait(10)
        # In the handler: off the queue, on this consumer's held list, not yet recorded as handled.
        assert depth(redis_client, "sms.inbound") == 0 and held(redis_client) == 1
        assert not redis_client.keys(keys.handled("sms.inbound", "*", "in-1"))
        release.set()
        wait_until(lambda: held(redis_client) == 0, timeout=10, message="the ack")
    assert seen == ["in-1"]
    [key] = redis_client.keys(keys.handled("sms.inbound", "*", "in-1"))
    assert key.endswith("test_runner.test_an_event_is_acked_only_after_the_handler_returns.<locals>.slow:in-1")
    assert 0 < redis_client.ttl(key) <= 7 * 24 * 3600


def test_a_raising_handler_is_retried_then_its_event_is_dead_with_the_error(
    settings, redis_client, publish, connection
):
    calls: list[str] = []

    def broken(event: dict[str, Any]) -> None:
        calls.append(event["id"])
        raise ValueError("no such customer " + "x" * 1000)

    publish(sms(7, text="the text"))
    with running(broken, settings, max_retries=2):
        wait_until(lambda: dead_depth(redis_client) == 1, timeout=10, message="the event on sms.inbound.dead")
        assert settled(redis_client)
    assert calls == ["in-7"] * 3  # the first delivery and two retries
    [record] = DeadLetters(connection, "sms.inbound").list()
    assert record["event"] == sms(7, text="the text")
    assert record["error"].startswith("ValueError: no such customer xxx") and len(record["error"]) <= 500
    assert record["handler"] == (
        "tests.consumers.test_runner."
        "test_a_raising_handler_is_retried_then_its_event_is_dead_with_the_error.<locals>.broken"
    )
    assert (record["queue"], record["retries"]) == ("sms.inbound", 2)
    assert isinstance(record["failed_at"], float)


def test_a_handler_that_recovers_handles_the_event_once(settings, redis_client, publish):
    calls: list[int] = []

    def flaky(event: dict[str, Any]) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("the CRM is down")

    publish(sms(2))
    with running(flaky, settings, max_retries=3):
        wait_until(lambda: redis_client.keys(keys.handled("sms.inbound", "*", "in-2")), timeout=10, message="handled")
        wait_until(lambda: settled(redis_client), timeout=10, message="acked")
    assert len(calls) == 3 and dead_depth(redis_client) == 0


def test_a_redelivered_event_already_handled_is_acked_and_skipped(settings, redis_client, publish):
    seen: list[str] = []
    publish(sms(3))
    publish(sms(3))  # the same event again, as a poller re-read or a redelivery brings it
    publish(sms(4))
    with running(seen.append, settings):  # type: ignore[arg-type]
        wait_until(lambda: len(seen) == 2 and settled(redis_client), timeout=10, message="both events")
    assert sorted(e["id"] for e in seen) == ["in-3", "in-4"]  # type: ignore[index]


def test_the_retry_count_rides_in_the_headers(settings, redis_client, publish):
    """An event that comes with its count spent goes straight to the dead queue on failure."""

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    publish(sms(5), **{RETRIES_HEADER: 3})
    with running(broken, settings, max_retries=3):
        wait_until(lambda: dead_depth(redis_client) == 1, timeout=10, message="dead at once")


def test_unreadable_events_go_straight_to_the_dead_queue(settings, redis_client, publish, connection):
    calls: list[object] = []
    publish({"schema": 99, "id": "from-the-future"})
    producer = connection.Producer()
    producer.publish(b"not json at all", exchange="sms.inbound", routing_key="sms.inbound",
                     content_type="text/plain", content_encoding="utf-8")  # fmt: skip
    with running(calls.append, settings):
        wait_until(lambda: dead_depth(redis_client) == 2, timeout=10, message="two dead records")
        assert settled(redis_client)
    assert calls == []
    schema, undecodable = DeadLetters(connection, "sms.inbound").list()
    assert schema["event"] == {"schema": 99, "id": "from-the-future"}
    assert schema["error"].startswith("PayloadError: unsupported event schema")
    assert undecodable["event"] == "not json at all" and undecodable["error"].startswith("ContentDisallowed")


def test_the_decorator_names_the_queue_and_the_retries(settings, redis_client, publish):
    seen: list[str] = []

    @consumers.handler(queue="sms.status", max_retries=0)
    def on_status(event: dict[str, Any]) -> None:
        seen.append(event["status"])
        if event["status"] == "UNDELIVERED":
            raise RuntimeError("no retries for this one")

    assert on_status(status_event(message_id="m", id_sms="1", status="X", at="t", metadata={})) is None
    seen.clear()
    for status in ("DELIVERED", "UNDELIVERED"):
        publish(status_event(message_id="m1", id_sms="9", status=status, at="2026-03-01T08:00:00Z", metadata={}),
                queue="sms.status")  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=on_status.run, kwargs={"settings": settings, "should_stop": stop.is_set})
    thread.start()
    try:
        wait_until(lambda: dead_depth(redis_client, "sms.status") == 1 and settled(redis_client, "sms.status"),
                   timeout=10, message="one handled, one dead")  # fmt: skip
    finally:
        stop.set()
        thread.join(10)
    assert seen == ["DELIVERED", "UNDELIVERED"]  # max_retries=0: no second try
    assert redis_client.keys(keys.handled("sms.status", "*on_status", "m1:DELIVERED"))



def test_a_broker_restarted_empty_still_gets_the_dead_records(redis_server, redis_client, monkeypatch):
    """A broker Redis without persistence comes back empty: kombu's binding sets are gone, and the
    consumer declared `.dead` long ago. Its dead records must still land, not vanish."""
    from devtools.redis_server import RedisServer

    with RedisServer(appendonly=False) as broker:
        monkeypatch.setenv("REDIS_URL", redis_server.url)
        monkeypatch.setenv("CELERY_BROKER_URL", broker.url)
        settings = load_core_settings()
        broker_client = broker.client(decode_responses=True)

        def broken(event: dict[str, Any]) -> None:
            raise ValueError("still broken")

        publisher = EventPublisher(broker_connection(settings))
        try:
            with running(broken, settings, max_retries=0):
                publisher.publish(event_queue("sms.inbound"), sms(1))
                wait_until(lambda: dead_depth(broker_client) == 1, timeout=10, message="the first dead record")
                broker.kill()
                broker.restart()  # the same port, no AOF: it comes back empty
                broker_client = broker.client(decode_responses=True)
                assert broker_client.keys("_kombu.binding.*") == []
                publisher.publish(event_queue("sms.inbound"), sms(2))
                wait_until(lambda: dead_depth(broker_client) == 1, timeout=20, message="the dead record after restart")
        finally:
            publisher.close()
        [record] = [json.loads(raw)["body"] for raw in broker_client.lrange("sms.inbound.dead", 0, -1)]
        assert record  # kombu's envelope: the dead record itself is in its body


def test_whatever_else_sits_on_the_queue_goes_to_dead_and_the_consumer_goes_on(settings, redis_client, publish):
    infinite = json.dumps({"body": base64.b64encode(json.dumps(sms(8)).encode()).decode(),
                           "content-type": "application/json", "headers": {RETRIES_HEADER: 1e999},
                           "properties": {"body_encoding": "base64"}})  # fmt: skip
    for raw in (b"[" * 200_000, b"\xff\xfe", b"{}", infinite.encode()):
        redis_client.lpush("sms.inbound", raw)
    publish(sms(9))
    seen: list[str] = []

    def fails_on_8(event: dict[str, Any]) -> None:
        seen.append(event["id"])
        if event["id"] == "in-8":
            raise RuntimeError("still failing")

    with running(fails_on_8, settings, max_retries=3):
        wait_until(lambda: dead_depth(redis_client) == 4 and settled(redis_client), timeout=10,
                   message="four on the dead queue, the good one handled")  # fmt: skip
    # An unreadable retry count counts as 0 (failures.retries_of): the first try and three retries.
    assert sorted(seen) == ["in-8"] * 4 + ["in-9"]
