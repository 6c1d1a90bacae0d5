"""RabbitMQ as the broker (README: "RabbitMQ works too"): sends, scheduled sends through the upkeep
thread, and the sweeper's queue-depth check, on a vhost of the test's own."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from core.states import State
from tests.support.redis_server import RedisServer
from tests.support.sim_process import SimProcess
from tests.worker.stack import Stack, phones


def _rabbitmq_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return shutil.which("rabbitmqctl") is not None
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _rabbitmq_answers(), reason="no RabbitMQ on 127.0.0.1:5672")


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def rabbit_stack(module_redis: RedisServer, sim_process: SimProcess) -> Iterator[Stack]:
    vhost = f"lightsms-test-{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        stack = Stack(module_redis, sim_process, CELERY_BROKER_URL=f"amqp://guest:guest@127.0.0.1:5672/{vhost}")
        stack.reset()
        try:
            stack.start_worker("rabbit")
            stack.start_beat()
            yield stack
        finally:
            stack.stop()
    finally:
        _rabbitmqctl("delete_vhost", vhost)


def test_sends_and_scheduled_sends_go_through_a_rabbitmq_broker(rabbit_stack: Stack):
    stack = rabbit_stack
    numbers = phones(20, start=700)
    ids = stack.producer.send_many(numbers[:10], "over amqp")
    ids += [stack.producer.send(p, "over amqp, alone") for p in numbers[10:19]]
    ids.append(stack.producer.send(numbers[19], "scheduled over amqp", send_at=time.time() + 1.5))
    messages = stack.wait_settled(ids, timeout=40)
    assert {m.state for m in messages} == {State.SENT}
    assert stack.accepted_by_phone() == dict.fromkeys(numbers, 1)
    assert stack.producer.dispatcher.waiting("normal") == 0  # the sweeper's queue-depth check works on AMQP
