"""The consumer on RabbitMQ (a vhost of the test's own; the store stays Redis): its connections
closed by the broker mid-consume lose and double nothing; retries and the dead queue work on AMQP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.dead_letters import DeadLetters
from core.contract import event_queue
from core.events import EventPublisher
from devtools.polling import wait_until
from devtools.processes import ManagedProcess, venv_executable
from tests.consumers.conftest import sms
from tests.support.rabbitmq import own_vhost, rabbitmqctl, requires_rabbitmq

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 200


pytestmark = requires_rabbitmq


@pytest.fixture
def vhost() -> Iterator[str]:
    with own_vhost("lightsms-consumers") as name:
        yield name


@pytest.fixture
def amqp(vhost, settings, monkeypatch):
    """Settings with RabbitMQ as the broker and the test Redis as the store."""
    from core.settings import load_core_settings

    url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    return load_core_settings()


def _consumer(redis_server, amqp_settings, record: Path, handler: str, *args: str, **env: str) -> ManagedProcess:
    process = ManagedProcess(
        [venv_executable("lightsms-queue"), "consume", f"tests.consumers.handlers:{handler}", *args],
        name=f"consumer-amqp-{handler}",
        env={"REDIS_URL": redis_server.url, "CELERY_BROKER_URL": amqp_settings.broker_url,
             "LIGHTSMS_TEST_RECORD": str(record), **env},  # fmt: skip
        cwd=ROOT,
        ready=r"consuming sms\.inbound with",
    )
    process.start().wait_ready(timeout=20)
    return process


def _handled(record: Path) -> list[str]:
    return record.read_text().split() if record.exists() else []


def test_connections_closed_by_rabbitmq_mid_consume_lose_and_double_nothing(amqp, redis_server, vhost, tmp_path):
    from core.events import broker_connection

    publisher = EventPublisher(broker_connection(amqp))
    for n in range(EVENTS):
        publisher.publish(event_queue("sms.inbound"), sms(n))
    publisher.close()
    record = tmp_path / "handled.txt"
    process = _consumer(redis_server, amqp, record, "record", LIGHTSMS_TEST_WORK_MS="5")
    try:
        wait_until(lambda: len(_handled(record)) >= EVENTS // 4, timeout=20, message="a quarter handled")
        rabbitmqctl("close_all_connections", "--vhost", vhost, "test: the broker drops every connection")
        assert len(_handled(record)) < EVENTS, "the outage came too late to test anything"
        wait_until(lambda: len(_handled(record)) >= EVENTS, timeout=60, message="every event handled")
        ids = _handled(record)
        assert sorted(ids) == sorted(f"in-{n}" for n in range(EVENTS)), "an event was lost"
        assert len(ids) == len(set(ids)), "an event was handled twice"
        assert process.alive and "broker connection back after" in process.output()
    finally:
        assert process.terminate(timeout=10) == 0


def test_retries_and_the_dead_queue_on_rabbitmq(amqp, redis_server, tmp_path):
    from core.events import broker_connection

    connection = broker_connection(amqp)
    publisher = EventPublisher(connection.clone())
    publisher.publish(event_queue("sms.inbound"), sms(1))
    publisher.close()
    record = tmp_path / "handled.txt"
    process = _consumer(redis_server, amqp, record, "always_fails", "--max-retries", "2")
    try:
        dead = DeadLetters(connection, "sms.inbound")
        wait_until(lambda: dead.list(), timeout=20, message="the event on sms.inbound.dead")
        assert _handled(record) == ["in-1"] * 3
        [first] = dead.list()
        assert dead.list() == [first]  # listing takes nothing
        assert first["error"] == "RuntimeError: the handler broke on purpose" and first["retries"] == 2
        assert dead.purge() == 1 and dead.list() == []
    finally:
        process.terminate(timeout=10)
        connection.release()
