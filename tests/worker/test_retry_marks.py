"""Between two attempts of a request that provably never reached LightSMS, no message is marked in
flight: a worker lost while it waits to try again leaves messages that are queued again and sent
once, not messages held UNKNOWN as if they might have been sent. Nor after a shutdown that comes
before the request starts. Real Redis, a scripted client."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pytest
import redis

from core import keys
from core.states import State
from lightsms.errors import ConnectError, LightSmsError, ThrottledError
from lightsms.models import PhoneResult
from tests.worker.harness import PHONES, Harness, accepted
from worker import sending
from worker.maintenance import Maintenance
from worker.policy import RetryPolicy

DEADLINE = 10.0


def failing_first(failure: LightSmsError) -> Callable[[Sequence[str]], list[PhoneResult]]:
    failures = [failure]

    def answer(phones: Sequence[str]) -> list[PhoneResult]:
        if failures:
            raise failures.pop()
        return [accepted(p) for p in phones]

    return answer


@pytest.fixture
def harness(redis_server, redis_client) -> Callable[..., Harness]:
    return lambda answer, **settings: Harness(redis_server.client(), answer, **settings)


def _marks(client: redis.Redis, ids: list[str]) -> list[tuple[str, str]]:
    return [tuple(client.hmget(keys.message(i), "state", "inflight")) for i in ids]  # type: ignore[misc]


@pytest.mark.parametrize("failure", [ConnectError("refused"), ThrottledError("HTTP 503")], ids=["refused", "503"])
@pytest.mark.parametrize("checked", [True, False], ids=["marked-by-the-claim", "marked-before-the-request"])
def test_no_message_is_in_flight_while_the_worker_waits_to_try_again(harness, redis_client, failure, checked):
    h = harness(failing_first(failure))
    # one checked phone: the claim marks it; three unchecked: begin_send marks them
    ids = h.enqueue([PHONES[0]], phone_checked=True) if checked else h.enqueue()
    seen: list[list[tuple[str, str]]] = []
    h.sender.sleep = lambda seconds: seen.append(_marks(redis_client, ids))
    h.sender.run(ids)
    assert seen and seen[0] == [("SENDING", "0")] * len(ids)  # still ours, no longer in flight
    assert h.states(ids) == [State.SENT] * len(ids)
    assert len(h.client.calls) == 2  # marked again for the second attempt, and sent once
    assert [redis_client.hget(keys.message(i), "inflight") for i in ids] == ["0"] * len(ids)


def test_a_worker_lost_while_waiting_to_try_again_leaves_its_messages_queued_again_and_sent_once(harness):
    h = harness(failing_first(ConnectError("refused")), lightsms_retry_window=30)
    ids = h.enqueue()
    waiting, resume = threading.Event(), threading.Event()

    def frozen(seconds: float) -> None:  # the worker stops here, as a killed or stalled one would
        waiting.set()
        resume.wait(DEADLINE)

    h.sender.sleep = frozen
    lost = threading.Thread(target=h.sender.run, args=(ids,))
    lost.start()
    try:
        assert waiting.wait(DEADLINE)
        producer = type("P", (), {"store": h.store, "requeue": h.requeued.extend})()
        sweeper = Maintenance(producer, h.circuit, RetryPolicy(3, 1, 1))  # type: ignore[arg-type]
        settled = sweeper._settle_expired_leases(h.store.now() + 10_000)  # the lease has run out
        assert settled == {"released": 3, "unknown": 0}
        assert h.states(ids) == [State.QUEUED] * 3 and sorted(h.requeued) == [(i, "normal") for i in ids]
    finally:
        resume.set()
        lost.join(DEADLINE)
    assert not lost.is_alive()
    assert len(h.client.calls) == 1  # the stalled worker, back, found them taken and sent nothing
    other = Harness(h.store.redis, lambda phones: [accepted(p) for p in phones])  # the worker that gets them
    other.sender.run(ids)
    assert h.states(ids) == [State.SENT] * 3 and other.client.calls == [PHONES]


@pytest.mark.parametrize("checked", [True, False], ids=["marked-by-the-claim", "marked-before-the-request"])
def test_a_late_copy_of_an_attempt_s_end_leaves_the_next_attempt_in_flight(harness, redis_client, checked):
    """end_attempt whose first copy reaches Redis late (a command redis-py sent again on a new
    connection, a packet held up): arriving while the next request is in flight, it must not clear
    that request's mark, or a worker lost then would have the message queued again and sent twice."""
    clear: list[Callable[[], int]] = []
    mark_again: list[Callable[[], object]] = []
    marks_in_flight: list[list[tuple[str, str]]] = []

    def answer(phones: Sequence[str]) -> list[PhoneResult]:
        if not clear:
            raise ConnectError("refused")
        if mark_again:  # the first attempt's mark, put back by a late copy of its begin_send, ...
            mark_again[0]()
        assert clear[0]() == 0  # ... then its end, arriving only now: neither clears the second's mark
        marks_in_flight.append(_marks(redis_client, ids))
        return [accepted(p) for p in phones]

    h = harness(answer)
    begin = h.store.begin_send_in_slot

    def copied(*args: object, **kwargs: object) -> object:
        if not clear:  # the first attempt's
            mark_again.append(lambda: begin(*args, **kwargs))  # type: ignore[arg-type]
        return begin(*args, **kwargs)  # type: ignore[arg-type]

    h.store.begin_send_in_slot = copied  # type: ignore[method-assign]
    end_attempt = h.store.end_attempt

    def held_up(message_ids: Sequence[str], *, lease: str, mark: str) -> int:
        cleared = end_attempt(message_ids, lease=lease, mark=mark)  # reached Redis ...
        clear.append(lambda: end_attempt(message_ids, lease=lease, mark=mark))  # ... and a copy is on its way
        return cleared

    h.store.end_attempt = held_up  # type: ignore[method-assign]
    ids = h.enqueue([PHONES[0]], phone_checked=True) if checked else h.enqueue()
    h.sender.run(ids)
    assert marks_in_flight == [[("SENDING", "1")] * len(ids)]
    assert h.states(ids) == [State.SENT] * len(ids) and len(h.client.calls) == 2
    assert bool(mark_again) is not checked  # the claim marked the first attempt, or begin_send did


def test_a_mark_that_cannot_be_cleared_does_not_stop_the_retry(harness, caplog):
    h = harness(failing_first(ConnectError("refused")))

    def redis_away(message_ids: Sequence[str], *, lease: str, mark: str) -> int:
        raise redis.ConnectionError("Redis went away")

    h.store.end_attempt = redis_away  # type: ignore[method-assign]
    ids = h.enqueue()
    h.sender.run(ids)
    assert h.states(ids) == [State.SENT] * 3 and len(h.client.calls) == 2
    assert "in-flight mark not cleared before the next attempt (ConnectionError)" in caplog.text


@pytest.mark.parametrize("checked", [True, False], ids=["marked-by-the-claim", "marked-before-the-request"])
def test_a_shutdown_while_waiting_for_the_slot_after_the_mark_queues_the_messages_again(harness, checked, monkeypatch):
    h = harness(lambda phones: [accepted(p) for p in phones])
    # A slot a second away, taken with the mark (as one 20 ms away is): a slow moment of this host
    # between setting it and the claim cannot let it pass before the sender waits for it.
    monkeypatch.setattr(sending, "SLOT_WITH_MARK", 2.0)
    seconds, micros = h.store.redis.time()
    h.store.redis.set(h.limiter.key, str(int(seconds) * 1_000_000 + int(micros) + 1_000_000))
    ids = h.enqueue([PHONES[0]], phone_checked=True) if checked else h.enqueue()

    def shutdown(seconds: float) -> None:
        raise KeyboardInterrupt

    h.sender.sleep = shutdown
    with pytest.raises(KeyboardInterrupt):
        h.sender.run(ids)
    assert h.client.calls == []  # no request was started ...
    assert h.states(ids) == [State.QUEUED] * len(ids)  # ... so nothing is UNKNOWN
    assert sorted(h.requeued) == [(i, "normal") for i in ids]


def test_a_shutdown_while_waiting_to_try_again_queues_the_messages_again(harness):
    h = harness(failing_first(ThrottledError("HTTP 429")))
    ids = h.enqueue()

    def shutdown(seconds: float) -> None:
        raise KeyboardInterrupt

    h.sender.sleep = shutdown
    with pytest.raises(KeyboardInterrupt):
        h.sender.run(ids)
    assert len(h.client.calls) == 1
    assert h.states(ids) == [State.QUEUED] * 3 and sorted(h.requeued) == [(i, "normal") for i in ids]
