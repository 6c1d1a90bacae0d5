"""A paid SMS is never sent twice: repeated tasks, racing workers, repeated idempotency keys."""

from __future__ import annotations

import base64
import json
import time

from core.states import State
from tests.support.polling import wait_until
from tests.worker.stack import Stack, phones

QUIET = 1.0  # seconds without a new simulator request before copies are taken as all consumed


def _copies_held(stack: Stack, ids: list[str], queue: str) -> int:
    """Tasks naming any of `ids` still in the broker: waiting in `queue` (a Redis list) or reserved by a
    worker (acks_late: kombu keeps a delivered task in its `unacked` hash until the task has run)."""
    wanted = set(ids)
    raws = [*stack.redis.lrange(queue, 0, -1), *(json.loads(v)[0] for v in stack.redis.hvals("unacked"))]
    held = 0
    for raw in raws:
        envelope = json.loads(raw) if isinstance(raw, str) else raw
        args = json.loads(base64.b64decode(envelope["body"]))[0]
        held += any(wanted & set(arg.get("ids", ())) for arg in args if isinstance(arg, dict))
    return held


def wait_every_copy_consumed(stack: Stack, ids: list[str], *, queue: str = "sms.normal", timeout: float = 30) -> None:
    """Settled is not done: a copy still queued or reserved could send again after we count. Wait until
    no copy is left in the queue (LLEN) or reserved, and the simulator's request count has not moved
    for QUIET seconds (a copy taken off `unacked` may still be mid-request)."""
    last = {"count": -1, "since": time.monotonic()}

    def consumed() -> bool:
        if _copies_held(stack, ids, queue):
            last["count"] = -1
            return False
        count, now = len(stack.admin.requests()), time.monotonic()
        if count != last["count"]:
            last.update(count=count, since=now)
            return False
        return now - last["since"] >= QUIET

    wait_until(consumed, timeout=timeout, interval=0.1, message="every copy of the task consumed")


def test_the_same_task_delivered_again_sends_nothing_new(stack: Stack):
    message_id = stack.producer.send(phones(1)[0], "once only")
    for _ in range(5):
        stack.producer.dispatcher.enqueue([message_id], "normal")
    [message] = stack.wait_settled([message_id], timeout=20)
    assert message.state is State.SENT
    wait_every_copy_consumed(stack, [message_id])  # counting before the last copy ran proves nothing
    assert stack.accepted_by_phone() == {phones(1)[0]: 1}


def test_two_workers_racing_for_the_same_messages_send_each_once(stack: Stack):
    second = stack.start_worker("w2")
    try:
        numbers = phones(300, start=1000)
        ids = stack.producer.send_many(numbers, "raced")
        # every batch's task published three more times: both workers get copies at once
        for _ in range(3):
            stack.producer.dispatcher.enqueue(ids, "normal")
        messages = stack.wait_settled(ids, timeout=60)
        assert {m.state for m in messages} == {State.SENT}
        wait_every_copy_consumed(stack, ids, timeout=60)
        accepted = stack.accepted_by_phone()
        assert sorted(accepted) == sorted(numbers)
        assert set(accepted.values()) == {1}
    finally:
        second.terminate(timeout=10)
        stack.processes.remove(second)


def test_a_repeated_idempotency_key_returns_the_same_id_and_sends_once(stack: Stack):
    phone = phones(1, start=2000)[0]
    first = stack.producer.send(phone, "receipt #1", idempotency_key="order-1")
    again = stack.producer.send(phone, "receipt #1", idempotency_key="order-1")
    assert first == again
    many = phones(3, start=2100)
    ids = stack.producer.send_many(many, "bulk receipt", idempotency_key="campaign-7")
    assert stack.producer.send_many(many, "bulk receipt", idempotency_key="campaign-7") == ids
    stack.wait_settled([first, *ids], timeout=20)
    accepted = stack.accepted_by_phone()
    assert accepted == {phone: 1, **dict.fromkeys(many, 1)}
    # and after it was sent, the key still answers with the same message and sends nothing
    assert stack.producer.send(phone, "receipt #1", idempotency_key="order-1") == first
    assert stack.accepted_by_phone() == accepted
