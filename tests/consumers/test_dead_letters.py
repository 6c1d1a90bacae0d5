"""DeadLetters on a real Redis broker: list leaves the dead queue as it was, requeue, purge."""

from __future__ import annotations

import json
from typing import Any

from consumers.dead_letters import DeadLetters
from consumers.failures import RETRIES_HEADER, dead_record
from core.contract import dead_queue_name, event_queue
from devtools.polling import wait_until
from tests.consumers.conftest import dead_depth, depth, running, sms


def _dead(publish, n: int, queue: str = "sms.inbound") -> list[dict[str, Any]]:
    records = [dead_record(event=sms(i), error=f"RuntimeError: {i}", handler="h.f", queue=queue, retries=3)
               for i in range(n)]  # fmt: skip
    for record in records:
        publish(record, queue=dead_queue_name(queue))
    return records


def _bodies(redis_client, queue: str) -> list[str]:
    """The dead queue's messages as Redis holds them, next to be taken first (kombu BRPOPs the right end)."""
    return [json.loads(raw)["body"] for raw in reversed(redis_client.lrange(queue, 0, -1))]


def test_list_shows_every_record_in_order_and_leaves_the_queue_as_it_was(connection, publish, redis_client):
    records = _dead(publish, 5)
    before = _bodies(redis_client, "sms.inbound.dead")
    dead = DeadLetters(connection, "sms.inbound")
    writes_before = _writes(redis_client)
    assert dead.list() == records
    assert dead.list() == records  # and again: nothing was taken
    assert _bodies(redis_client, "sms.inbound.dead") == before
    # Read in place: not a record was ever off the list (a Redis killed mid-list loses nothing).
    assert _writes(redis_client) == writes_before


def _writes(client) -> dict[str, int]:
    """How often Redis ran each command that takes from or writes to a list."""
    stats = client.info("commandstats")
    return {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0)
            for name in ("rpop", "lpop", "brpop", "lmove", "blmove", "rpoplpush", "lpush", "rpush", "lrem")}


def test_list_shows_a_record_it_cannot_read(connection, publish, redis_client):
    connection.Producer().publish(b"\xffnot json", exchange="sms.inbound.dead", routing_key="sms.inbound.dead",
                                  content_type="application/json", content_encoding="binary",
                                  declare=[event_queue("sms.inbound.dead")])  # fmt: skip
    [record] = DeadLetters(connection, "sms.inbound").list()
    assert "not json" in record["unreadable"]
    assert dead_depth(redis_client) == 1


def test_requeue_puts_each_event_back_with_a_fresh_retry_count(connection, publish, redis_client, settings):
    _dead(publish, 3)
    assert DeadLetters(connection, "sms.inbound").requeue() == 3
    assert dead_depth(redis_client) == 0 and depth(redis_client, "sms.inbound") == 3
    raw = [json.loads(m) for m in reversed(redis_client.lrange("sms.inbound", 0, -1))]
    assert all(RETRIES_HEADER not in m["headers"] for m in raw)
    seen: list[dict[str, Any]] = []
    with running(seen.append, settings):  # type: ignore[arg-type]
        wait_until(lambda: len(seen) == 3, timeout=10, message="the requeued events handled")
    assert seen == [sms(0), sms(1), sms(2)]  # in their order on the dead queue


def test_requeue_and_purge_touch_only_their_own_queue(connection, publish, redis_client):
    _dead(publish, 2, queue="sms.status")
    _dead(publish, 4)
    assert DeadLetters(connection, "sms.status").purge() == 2
    assert dead_depth(redis_client, "sms.status") == 0 and dead_depth(redis_client) == 4
    assert DeadLetters(connection, "sms.inbound").purge() == 4
    assert DeadLetters(connection, "sms.inbound").purge() == 0
    assert DeadLetters(connection, "sms.inbound").list() == []


def test_a_requeue_of_a_record_already_gone_pushes_nothing(connection, publish, redis_client):
    # Two operators at once: each record moves once.
    _dead(publish, 2)
    first, second = DeadLetters(connection, "sms.inbound"), DeadLetters(connection, "sms.inbound")
    seen_by_second = second._redis_records()  # read before the first moved them
    assert first.requeue() == 2
    assert [second._redis_move(raw) for raw in seen_by_second] == [0, 0]
    assert dead_depth(redis_client) == 0 and depth(redis_client, "sms.inbound") == 2
