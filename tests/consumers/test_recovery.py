"""The moments an outage or a death can strand an event on a Redis broker (consumers/redis_consumer.py),
made to happen on purpose: the take's reply lost after Redis moved the event, the settlement lost,
a consumer that died holding an event, and what the settle and session scripts do at their edges."""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

import pytest
import redis

from consumers.api import build_consumer
from consumers.dead_letters import DeadLetters
from consumers.redis_consumer import POLL_SECONDS, TAKE_SLACK, RedisEventConsumer
from consumers.redis_envelope import new_envelope, read_envelope
from core import keys
from core.store import load_script
from devtools.polling import wait_until
from tests.consumers.conftest import depth, running, settled, sms
from tests.core.test_arrival_window import redis_now


def _fail_once(monkeypatch: pytest.MonkeyPatch, owner: type, name: str, *, after: bool) -> list[int]:
    """owner.name raises a connection error once, as a Redis going away would: before the command
    reached it (after=False) or after it ran there, its reply lost (after=True)."""
    original = getattr(owner, name)
    failures: list[int] = []

    def flaky(self: Any, *args: Any, **kwargs: Any) -> Any:
        if failures:
            return original(self, *args, **kwargs)
        result = original(self, *args, **kwargs) if after else None
        if after and result is None:
            return result  # nothing was taken: wait for a take that moved an event
        failures.append(1)
        raise redis.ConnectionError("Connection closed by server.")

    monkeypatch.setattr(owner, name, flaky)
    return failures


def test_an_event_moved_but_whose_reply_was_lost_is_given_back_and_handled_once(
    settings, redis_client, publish, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger="lightsms_queue.consumers")
    failures = _fail_once(monkeypatch, redis.Redis, "blmove", after=True)
    seen: list[dict[str, Any]] = []
    publish(sms(2))
    with running(seen.append, settings):  # type: ignore[arg-type]
        wait_until(lambda: failures and seen and settled(redis_client), timeout=10, message="given back and handled")
    assert seen == [sms(2)]  # kombu's BRPOP would have lost it: it was in no list Redis kept
    assert "1 held event(s) given back" in caplog.text


def test_an_event_whose_ack_was_lost_is_given_back_and_not_handled_again(
    settings, redis_client, publish, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger="lightsms_queue.consumers")
    failures = _fail_once(monkeypatch, RedisEventConsumer, "settle", after=False)
    seen: list[dict[str, Any]] = []
    publish(sms(1))
    with running(seen.append, settings):  # type: ignore[arg-type]
        wait_until(lambda: failures and settled(redis_client), timeout=10, message="given back and acked")
    assert seen == [sms(1)]  # the redelivery found the handled key
    assert "1 held event(s) given back" in caplog.text and "already handled" in caplog.text


def alive_for(client: redis.Redis, consumer_id: str, queue: str = "sms.inbound") -> float | None:
    """Seconds until the consumer's registration deadline (negative once passed); None when it is
    not registered."""
    score = client.zscore(keys.consumers_of(queue), consumer_id)
    return None if score is None else score / 1000 - redis_now(client)


def _strand(client: redis.Redis, consumer_id: str, event: bytes, *, alive_ms: int) -> None:
    """What a consumer that died holding `event` leaves: its deadline `alive_ms` from now."""
    client.lpush(keys.consumer_held("sms.inbound", consumer_id), event)
    client.zadd(keys.consumers_of("sms.inbound"), {consumer_id: redis_now(client) * 1000 + alive_ms})


@pytest.fixture
def quick(settings):
    """Settings under which a silent consumer counts as dead after 2 s (30 by default)."""
    return settings.model_copy(update={"lightsms_consumer_dead_after": 2.0})


def test_a_dead_consumers_event_is_given_back_and_a_live_ones_is_left_alone(quick, redis_client, publish, caplog):
    caplog.set_level(logging.INFO, logger="lightsms_queue.consumers")
    publish(sms(1))
    publish(sms(2))
    raw_1, raw_2 = redis_client.rpop("sms.inbound"), redis_client.rpop("sms.inbound")
    _strand(redis_client, "dead-one", raw_1, alive_ms=-400_000)  # long dead: forgotten once swept
    _strand(redis_client, "busy-one", raw_2, alive_ms=60_000)  # alive for the whole test
    seen: list[str] = []
    with running(lambda event: seen.append(event["id"]), quick):
        wait_until(lambda: seen == ["in-1"] and depth(redis_client, "sms.inbound") == 0, timeout=10,
                   message="the dead consumer's event handled")  # fmt: skip
        assert redis_client.lrange(keys.consumer_held("sms.inbound", "busy-one"), 0, -1) == [raw_2]
    assert alive_for(redis_client, "dead-one") is None
    assert "consumer dead-one stopped answering: 1 event(s) it held given back" in caplog.text


def test_a_stopped_consumer_stays_registered_as_dead(settings, redis_client, publish):
    seen: list[str] = []
    publish(sms(1))
    with running(lambda event: seen.append(event["id"]), settings) as consumer:
        wait_until(lambda: seen and settled(redis_client), timeout=10, message="handled")
        left = alive_for(redis_client, consumer.consumer_id)
        assert left is not None and 25 < left <= 30  # renewed lately, for its 30 s
    # Dead at once (a take still on its way may land on its list: the next sweep finds it).
    left = alive_for(redis_client, consumer.consumer_id)
    assert left is not None and left <= 0


def test_a_stopped_consumer_is_not_marked_alive_again_before_it_is_closed(quick, redis_client):
    consumer = build_consumer(lambda event: None, settings=quick)
    assert isinstance(consumer, RedisEventConsumer)
    consumer.poll_seconds = 0.1
    thread = threading.Thread(target=consumer.run)
    thread.start()
    try:
        wait_until(lambda: (alive_for(redis_client, consumer.consumer_id) or 0) > 0, timeout=10,
                   message="the consumer registered")  # fmt: skip
    finally:
        consumer.stop()
        thread.join(10)
    gone_at = time.monotonic()
    # Longer than its renewal period (dead_after / 6), before close(): nothing renews it any more.
    wait_until(lambda: time.monotonic() - gone_at > 1.0, timeout=5, message="a renewal period")
    left = alive_for(redis_client, consumer.consumer_id)
    assert left is not None and left <= 0
    consumer.close()


def test_a_consumer_swept_while_its_renewals_failed_registers_again_before_it_takes(quick, redis_client, publish):
    found: list[float | None] = []
    with running(lambda event: found.append(alive_for(redis_client, consumer.consumer_id)), quick) as consumer:
        wait_until(lambda: consumer._alive and consumer._alive.fresh, timeout=10, message="the consumer alive")
        consumer._alive.stop()  # renewals fail from now on, as in an outage of its own...
        redis_client.zrem(keys.consumers_of("sms.inbound"), consumer.consumer_id)  # ...and it was forgotten
        wait_until(lambda: not consumer._alive.fresh, timeout=5, message="its last renewal no longer fresh")
        publish(sms(1))
        wait_until(lambda: found, timeout=10, message="the event handled")
    # Taken while unregistered, a kill -9 would have left it where no sweep looks; taken unrenewed, a
    # sweep could have given it back under the handler.
    [left] = found
    assert left is not None and left > quick.lightsms_consumer_dead_after / 2


def test_a_broker_that_stops_answering_mid_take_does_not_hang_stop(settings, redis_server, redis_client):
    consumer = build_consumer(lambda event: None, settings=settings)
    assert isinstance(consumer, RedisEventConsumer)
    thread = threading.Thread(target=consumer.run)
    thread.start()
    process = redis_server.process
    assert process is not None
    try:
        wait_until(lambda: consumer._in_session, timeout=10, message="the consumer waiting for events")
        process.send_signal(signal.SIGSTOP)  # the connection stays open; no reply ever comes
        try:
            consumer.stop()
            # The take's read timeout, then the stop script's (the broker may be back by then).
            thread.join(2 * (POLL_SECONDS + TAKE_SLACK) + 3)
            assert not thread.is_alive(), "stop() waited on a broker that never answers"
        finally:
            process.send_signal(signal.SIGCONT)
    finally:
        consumer.stop()
        thread.join(10)
        consumer.close()


# -- the scripts at their edges ------------------------------------------------------------------

HELD, QUEUE, DEAD = keys.consumer_held("q", "c1"), "q", "q.dead"


@pytest.fixture
def settle(redis_client):
    return redis_client.register_script(load_script("consumer_settle.lua"))


def test_settling_an_event_no_longer_held_publishes_nothing(redis_client, settle):
    # A sweep gave it back while its handler failed: it comes again from the queue, not twice.
    assert settle(keys=[HELD, QUEUE, DEAD], args=[b"event", b"dead record"]) == 0
    assert redis_client.llen(DEAD) == 0


def test_settling_publishes_and_removes_in_one_step_and_returns_orphans_to_the_front(redis_client, settle):
    redis_client.rpush(QUEUE, "newer", "older")  # the consuming end is the right
    redis_client.lpush(HELD, "orphan")  # a take whose reply was lost, then taken again
    redis_client.lpush(HELD, "event")
    assert settle(keys=[HELD, QUEUE, DEAD], args=["event", "dead record"]) == 1
    assert redis_client.lrange(DEAD, 0, -1) == ["dead record"]
    assert redis_client.llen(HELD) == 0
    assert redis_client.rpop(QUEUE) == "orphan"  # the next one out


DEAD_AFTER_MS = 5000


@pytest.fixture
def session(redis_client):
    script = redis_client.register_script(load_script("consumer_session.lua"))
    return lambda mode, consumer="c1": script(
        keys=[keys.consumer_held("q", consumer), QUEUE, keys.consumers_of("q")], args=[mode, consumer, DEAD_AFTER_MS])


def _deadline_in(client: redis.Redis, consumer: str, ms: int) -> None:
    client.zadd(keys.consumers_of("q"), {consumer: redis_now(client) * 1000 + ms})


def test_a_session_gives_back_in_order_and_a_sweep_spares_the_living(redis_client, session):
    redis_client.rpush(QUEUE, "later")
    for event in ("first", "second"):  # taken in this order: each went to the held list's left
        redis_client.lpush(keys.consumer_held("q", "c1"), event)
    assert session("sweep") == 2  # c1 is not registered at all: nobody renews it
    assert [redis_client.rpop(QUEUE) for _ in range(3)] == ["first", "second", "later"]
    assert session("start") == 0
    redis_client.lpush(keys.consumer_held("q", "c1"), "third")
    assert session("sweep") == -1  # just renewed: left alone
    assert redis_client.llen(keys.consumer_held("q", "c1")) == 1
    assert session("stop") == 1 and redis_client.rpop(QUEUE) == "third"
    left = alive_for(redis_client, "c1", queue="q")
    assert left is not None and left <= 0  # dead, still registered


def test_a_swept_consumer_stays_registered_so_an_event_it_takes_at_the_last_moment_is_found(redis_client, session):
    _deadline_in(redis_client, "c1", -1000)  # dead to the others...
    assert session("sweep") == 0
    redis_client.lpush(keys.consumer_held("q", "c1"), "late")  # ...yet its take, already sent, lands
    assert session("sweep") == 1 and redis_client.rpop(QUEUE) == "late"
    _deadline_in(redis_client, "c1", -301_000)  # long dead (five minutes at least), holding nothing: forgotten
    assert session("sweep") == 0 and redis_client.zcard(keys.consumers_of("q")) == 0


def test_renewing_only_registers(redis_client, session):
    redis_client.lpush(keys.consumer_held("q", "c1"), "in hand")
    assert session("renew") == 0
    assert redis_client.llen(keys.consumer_held("q", "c1")) == 1
    left = alive_for(redis_client, "c1", queue="q")
    assert left is not None and abs(left - DEAD_AFTER_MS / 1000) < 1


def test_each_consumer_is_judged_by_its_own_dead_after(redis_client, redis_server):
    script = redis_client.register_script(load_script("consumer_session.lua"))

    def call(mode: str, dead_after_ms: int) -> int:
        return int(script(keys=[keys.consumer_held("q", "slow"), QUEUE, keys.consumers_of("q")],
                          args=[mode, "slow", dead_after_ms]))  # fmt: skip

    call("renew", 30_000)  # renews every 5 s, alive for 30
    redis_client.lpush(keys.consumer_held("q", "slow"), "in hand")
    _deadline_in(redis_client, "slow", 30_000 - 4_000)  # its last renewal 4 s ago
    assert call("sweep", 2_000) == -1  # a sweeper set to 2 s does not take its event
    assert redis_client.llen(keys.consumer_held("q", "slow")) == 1


def test_an_envelope_this_consumer_writes_is_what_kombu_reads(connection, redis_client):
    redis_client.lpush("sms.inbound.dead", new_envelope({"event": {"id": "x"}, "error": "E"}, "sms.inbound.dead"))
    assert DeadLetters(connection, "sms.inbound").list() == [{"event": {"id": "x"}, "error": "E"}]
    [raw] = redis_client.lrange("sms.inbound.dead", 0, -1)
    assert read_envelope(raw.encode()).decode() == {"event": {"id": "x"}, "error": "E"}
