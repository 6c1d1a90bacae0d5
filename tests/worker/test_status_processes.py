"""Delivery status end to end: a real worker and beat, the simulator. A message sent through the
producer goes SENT, then DELIVERED by beat's poll_status, and the change is on `sms.status`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection

from core import keys
from core.states import State
from devtools.polling import wait_until
from tests.support.redis_server import RedisServer
from tests.support.sim_process import SimProcess
from tests.worker.stack import Stack


@pytest.fixture(scope="module")
def status_stack(module_redis: RedisServer, sim_process: SimProcess) -> Iterator[Stack]:
    # Status asked 1, 2, 3, 4 and 6 s after sending (the simulator delivers after 2 s), beat's tick every
    # second: a loaded machine's late first check (past 2 s) must not leave only the hourly one after it.
    stack = Stack(module_redis, sim_process, LIGHTSMS_STATUS_SCHEDULE="1,2,3,4,6", LIGHTSMS_STATUS_INTERVAL="1")
    try:
        stack.reset()
        stack.start_worker("w1")
        stack.start_beat()
        yield stack
    finally:
        stack.stop()


def next_event(stack: Stack) -> dict[str, Any] | None:
    with Connection(stack.env["REDIS_URL"]) as connection:
        queue = connection.SimpleQueue("sms.status")
        try:
            message = queue.get(block=False)
        except queue.Empty:
            return None
        finally:
            queue.close()
        message.ack()
        body = message.body if isinstance(message.body, str) else message.body.decode()
        event: dict[str, Any] = json.loads(body)
        return event


def test_a_sent_message_is_delivered_by_beats_status_poll_and_the_change_published(status_stack: Stack):
    stack = status_stack
    message_id = stack.producer.send("+370 612 34567", "Your code is 1234", metadata={"user": 42})
    [sent] = stack.wait_settled([message_id], timeout=30)
    assert sent.state is State.SENT and sent.id_sms

    [delivered] = stack.wait_settled([message_id], timeout=30, settled=frozenset({State.DELIVERED}))
    assert delivered.delivery_status == "delivered" and delivered.status_at is not None

    event = wait_until(lambda: next_event(stack), timeout=10, message="the event on sms.status")
    assert event == {
        "schema": 1, "message_id": message_id, "id_sms": sent.id_sms, "status": "DELIVERED",
        "at": event["at"], "metadata": {"user": 42},
    }  # fmt: skip
    assert "61234567" not in json.dumps(event)
    assert stack.redis.hget(keys.POLLER_HEALTH, "status_ok_at") is not None
