"""RabbitMQ as the broker (README: "RabbitMQ works too"): sends, scheduled sends through the upkeep
thread, and the sweeper's queue-depth check, on a vhost of the test's own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from queue import Empty

import pytest
from kombu import Connection

from core.states import State
from devtools.polling import wait_until
from tests.support.rabbitmq import own_vhost, requires_rabbitmq
from tests.support.redis_server import RedisServer
from tests.support.sim_process import SimProcess
from tests.worker.stack import Stack, phones
from tests.worker.test_end_to_end import one_thousand_messages

pytestmark = requires_rabbitmq


@pytest.fixture(scope="module")
def rabbit_stack(module_redis: RedisServer, sim_process: SimProcess) -> Iterator[Stack]:
    with own_vhost("lightsms-test") as vhost:
        stack = Stack(module_redis, sim_process, CELERY_BROKER_URL=f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
                      LIGHTSMS_INCOMING_INTERVAL="1", LIGHTSMS_STATUS_SCHEDULE="1,2", LIGHTSMS_STATUS_INTERVAL="1")
        stack.reset()
        try:
            stack.start_worker("rabbit")
            stack.start_beat()
            yield stack
        finally:
            stack.stop()


def test_sends_and_scheduled_sends_go_through_a_rabbitmq_broker(rabbit_stack: Stack):
    stack = rabbit_stack
    numbers = phones(20, start=700)
    ids = stack.producer.send_many(numbers[:10], "over amqp")
    ids += [stack.producer.send(p, "over amqp, alone") for p in numbers[10:19]]
    ids.append(stack.producer.send(numbers[19], "scheduled over amqp", send_at=time.time() + 1.5))
    messages = stack.wait_settled(ids, timeout=40)
    # Sent, and maybe delivered already: this stack asks for statuses a second after a send, and
    # the scheduled one leaves 1.5 s after the others.
    assert {m.state for m in messages} <= {State.SENT, State.DELIVERED}
    assert stack.accepted_by_phone() == dict.fromkeys(numbers, 1)
    assert stack.producer.dispatcher.waiting("normal") == 0  # the sweeper's queue-depth check works on AMQP


def test_the_end_to_end_send_test_again_with_rabbitmq_as_the_broker(rabbit_stack: Stack):
    rabbit_stack.reset()
    one_thousand_messages(rabbit_stack)


def test_incoming_sms_and_delivery_statuses_are_published_on_rabbitmq(rabbit_stack: Stack):
    stack = rabbit_stack
    stack.reset()
    [incoming] = stack.admin.incoming([{"sender": "37061234567", "phone": "5163251632", "text": "STOP"}])
    message_id = stack.producer.send("37060000321", "delivered over amqp")
    stack.wait_settled([message_id], timeout=30, settled=frozenset({State.DELIVERED}))
    broker = stack.settings().broker_url
    seen: list[dict] = []

    def found(key: str, value: str) -> list[dict] | None:
        seen.extend(_events(broker, "sms.inbound") + _events(broker, "sms.status"))
        return [event for event in seen if event.get(key) == value] or None

    [inbound] = wait_until(lambda: found("id", incoming), timeout=30)
    assert inbound["text"] == "STOP" and inbound["sender"] == "37061234567"
    [status] = wait_until(lambda: found("message_id", message_id), timeout=30)
    assert status["status"] == "DELIVERED"


def _events(broker_url: str, queue: str) -> list[dict]:
    """What a service without this package reads: plain kombu on the broker."""
    found = []
    with Connection(broker_url) as connection:
        simple = connection.SimpleQueue(queue)
        try:
            while True:
                try:
                    message = simple.get(block=True, timeout=0.5)
                except Empty:
                    return found
                found.append(message.payload)
                message.ack()
        finally:
            simple.close()
