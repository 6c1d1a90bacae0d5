"""A paid SMS is never sent twice: repeated tasks, racing workers, repeated idempotency keys."""

from __future__ import annotations

from core.states import State
from tests.worker.stack import Stack, phones


def test_the_same_task_delivered_again_sends_nothing_new(stack: Stack):
    message_id = stack.producer.send(phones(1)[0], "once only")
    for _ in range(5):
        stack.producer.dispatcher.enqueue([message_id], "normal")
    [message] = stack.wait_settled([message_id], timeout=20)
    assert message.state is State.SENT
    # wait for every copy of the task to have been consumed before counting
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
