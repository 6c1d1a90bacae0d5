"""An example run as the README says, `lightsms-queue consume --keywords examples.poll_tally:handle`,
in a real consumer process: votes reach the poll, STOP and HELP are the keyword router's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core import keys
from core.contract import INBOUND_QUEUE, inbound_event
from core.events import EventPublisher, broker_connection
from core.settings import CoreSettings
from devtools.polling import wait_until
from devtools.processes import ManagedProcess, venv_executable

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def consumer(redis_server, redis_client) -> Iterator[ManagedProcess]:
    env = {"REDIS_URL": redis_server.url, "LIGHTSMS_SENDER": "LightSMS", "LIGHTSMS_ADD2STOP": "false",
           "POLL_NAME": "e2e"}  # fmt: skip
    argv = [venv_executable("lightsms-queue"), "consume", "--keywords", "examples.poll_tally:handle"]
    process = ManagedProcess(argv, name="consume-poll", env=env, cwd=REPO, ready=r"consuming sms\.inbound")
    process.start()
    try:
        process.wait_ready(timeout=30)
        yield process
    finally:
        process.terminate(timeout=10)


def test_the_poll_example_behind_the_keyword_router(consumer, redis_server, redis_client):
    connection = broker_connection(CoreSettings(redis_url=redis_server.url))
    publisher = EventPublisher(connection)
    events = [("A", "37060000001"), ("b", "37060000002"), ("STOP", "37060000003"), ("HELP", "37060000004")]
    try:
        for i, (text, sender) in enumerate(events):
            publisher.publish(INBOUND_QUEUE, inbound_event(sms_id=f"e2e-{i}", received_at="2025-01-15T14:23:45+02:00",
                                                           sender=sender, phone="5163251632", prefix="51632",
                                                           text=text))  # fmt: skip
    finally:
        publisher.close()

    def done() -> bool:
        tally = redis_client.hgetall("example:poll:e2e:tally")
        replies = list(redis_client.scan_iter(match=keys.MESSAGE_PREFIX + "*"))
        return tally == {"A": "1", "B": "1"} and redis_client.sismember(keys.OPT_OUT, "37060000003") and len(
            replies) == 2  # fmt: skip  (the STOP confirmation and the HELP text)

    wait_until(done, timeout=20, interval=0.1, message="the consumer did not handle every event")
