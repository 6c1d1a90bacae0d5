"""The whole inbound path with every part real: an SMS appears at the simulator, beat ticks the
poller on a worker, the event reaches a `lightsms-queue consume --keywords` process, and the router's
reply goes out through producers and the worker to the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core import keys
from devtools.polling import wait_until
from devtools.processes import ManagedProcess, venv_executable
from producers import OptedOutError
from tests.worker.stack import Stack

REPO = Path(__file__).resolve().parents[2]
SUBSCRIBER = "37060007777"


@pytest.fixture
def pipeline(redis_server, redis_client, sim_process, sim_admin) -> Iterator[Stack]:
    stack = Stack(redis_server, sim_process, LIGHTSMS_INCOMING_INTERVAL="1", LIGHTSMS_INCOMING_OVERLAP="5",
                  LIGHTSMS_ADD2STOP="true")  # fmt: skip
    stack.reset()
    consumer = ManagedProcess([venv_executable("lightsms-queue"), "consume", "--keywords"], name="consume-pipeline",
                              env=stack.env, cwd=REPO, ready=r"consuming sms\.inbound")  # fmt: skip
    try:
        stack.start_worker("pipeline")
        stack.start_beat()
        consumer.start()
        consumer.wait_ready(timeout=30)
        yield stack
    finally:
        consumer.terminate(timeout=10)
        stack.stop()


def _sent_to(stack: Stack, phone: str) -> list[str]:
    return [m["text"] for m in stack.admin.messages() if m["phone"] == phone]


def test_stop_and_help_from_a_phone_end_to_end(pipeline):
    stack = pipeline
    stack.admin.incoming([{"sender": SUBSCRIBER, "phone": "5163251632", "text": " stop "}])
    # The confirmation reaches the simulator, then add2stop.php, and the number is opted out here.
    replies = wait_until(lambda: _sent_to(stack, SUBSCRIBER) or None, timeout=30)
    assert replies == [stack.settings().lightsms_stop_reply]
    wait_until(lambda: stack.admin.requests("add2stop") or None, timeout=40)
    assert stack.redis.sismember(keys.OPT_OUT, SUBSCRIBER)
    with pytest.raises(OptedOutError) as refused:
        stack.producer.send(SUBSCRIBER, "Our newsletter")
    assert refused.value.field == "phone"

    # HELP twice within the period: one reply (an opted-out number gets none, so use another number).
    other = "37060008888"
    stack.admin.incoming([{"sender": other, "phone": "5163251632", "text": "HELP"}] * 2)
    wait_until(lambda: _sent_to(stack, other) or None, timeout=30)
    handled = wait_until(lambda: len(stack.redis.keys(keys.PREFIX + "handled:*")) >= 3 or None, timeout=30)
    assert handled and _sent_to(stack, other) == [stack.settings().lightsms_help_text]
    assert len(stack.admin.requests("incoming")) >= 2
