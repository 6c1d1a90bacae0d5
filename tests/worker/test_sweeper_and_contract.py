"""Lost tasks are found again, and a service without this package can enqueue by the README's contract."""

from __future__ import annotations

import time
import uuid

from celery import Celery

from core.message import Message
from core.states import State
from tests.worker.stack import Stack, phones


def test_a_queued_message_whose_task_was_lost_is_queued_again(stack: Stack):
    now = time.time()
    message = Message(id=uuid.uuid4().hex, phone=phones(1)[0], text="lost task", sender="LightSMS",
                      state=State.QUEUED, created_at=now, updated_at=now)  # fmt: skip
    stack.producer.store.create([message])  # stored, but no task was ever published
    [settled] = stack.wait_settled([message.id], timeout=20)
    assert settled.state is State.SENT
    assert stack.accepted_by_phone() == {message.phone: 1}


def test_enqueue_with_plain_celery_by_the_documented_contract(stack: Stack):
    good, bad = uuid.uuid4().hex, uuid.uuid4().hex
    now = time.time()
    for message_id, phone in [(good, phones(1)[0]), (bad, "not-a-phone")]:
        stack.redis.hset(f"sms:msg:{message_id}", mapping={
            "id": message_id, "phone": phone, "text": "from another service", "sender": "LightSMS",
            "state": "QUEUED", "priority": "normal", "on_unknown": "hold", "attempts": 0,
            "created_at": now, "queued_at": now,
        })  # fmt: skip
        stack.redis.zadd("sms:idx:queued:normal", {message_id: now})  # as README documents
    app = Celery(broker=stack.redis_server.url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"])
    app.send_task("lightsms.send", args=[{"v": 1, "ids": [good, bad]}], queue="sms.normal")

    sent, failed = stack.wait_settled([good, bad], timeout=20)
    assert sent.state is State.SENT and sent.id_sms
    assert (failed.state, failed.error_code) == (State.FAILED, "invalid")
    assert "phone" in (failed.error_meaning or "")
    assert stack.accepted_by_phone() == {phones(1)[0]: 1}


def test_an_unreadable_record_does_not_stop_the_sweeper(stack: Stack):
    now = time.time()
    stack.redis.hset("sms:msg:broken", mapping={"id": "broken", "state": "BOGUS", "priority": "urgent"})
    stack.redis.zadd("sms:idx:queued:normal", {"broken": now - 60})
    message = Message(id=uuid.uuid4().hex, phone=phones(1)[0], text="lost task", sender="LightSMS",
                      state=State.QUEUED, created_at=now, updated_at=now)  # fmt: skip
    stack.producer.store.create([message])
    [settled] = stack.wait_settled([message.id], timeout=20)
    assert settled.state is State.SENT


def test_a_default_region_does_not_rewrite_stored_international_numbers(stack: Stack):
    regional = stack.start_worker("regional", LIGHTSMS_DEFAULT_REGION="DE")
    try:
        # German numbers start 49: with the region applied twice, 4915... would become 494915...
        numbers = [f"491511234{i:04d}" for i in range(20)]
        ids = [stack.producer.send(p, f"regional {p}") for p in numbers]
        stack.wait_settled(ids, timeout=30)
        assert sorted(stack.accepted_by_phone()) == sorted(numbers)
    finally:
        regional.terminate(timeout=10)
        stack.processes.remove(regional)
