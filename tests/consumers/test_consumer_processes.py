"""Real consumer processes (`lightsms-queue consume ...`) on the test Redis as broker and store: a
failing handler's event ends on the dead queue; Redis restarted or killed mid-consume loses and
doubles nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from consumers.dead_letters import DeadLetters
from devtools.polling import wait_until
from devtools.processes import ManagedProcess, venv_executable
from tests.consumers.conftest import dead_depth, held, settled, sms

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 200


@pytest.fixture
def record_file(tmp_path: Path) -> Path:
    return tmp_path / "handled.txt"


@pytest.fixture
def consumer(redis_server, redis_client, record_file) -> Iterator[Callable[..., ManagedProcess]]:
    started: list[ManagedProcess] = []

    def start(handler: str, *args: str, **env: str) -> ManagedProcess:
        process = ManagedProcess(
            [venv_executable("lightsms-queue"), "consume", f"tests.consumers.handlers:{handler}", *args],
            name=f"consumer-{handler}",
            env={"REDIS_URL": redis_server.url, "CELERY_BROKER_URL": redis_server.url,
                 "LIGHTSMS_TEST_RECORD": str(record_file), **env},  # fmt: skip
            cwd=ROOT,
            ready=r"consuming sms\.inbound with tests\.consumers\.handlers\.",
        )
        started.append(process.start())
        process.wait_ready(timeout=20)
        return process

    yield start
    for process in started:
        process.terminate(timeout=10)


def handled(record_file: Path) -> list[str]:
    return record_file.read_text().split() if record_file.exists() else []


def test_a_failing_handler_is_retried_then_its_event_is_dead(consumer, publish, redis_client, record_file, connection):
    process = consumer("always_fails", "--max-retries", "2")
    publish(sms(1, text="please fail"))
    wait_until(lambda: dead_depth(redis_client) == 1, timeout=20, message="the event on sms.inbound.dead")
    assert handled(record_file) == ["in-1"] * 3
    [record] = DeadLetters(connection, "sms.inbound").list()
    assert record["event"]["text"] == "please fail"
    assert record["error"] == "RuntimeError: the handler broke on purpose"
    assert (record["handler"], record["queue"], record["retries"]) == (
        "tests.consumers.handlers.always_fails", "sms.inbound", 2)
    # SIGTERM: the consumer finishes what it holds and exits 0; nothing it logged quotes the event's text.
    assert process.terminate(timeout=10) == 0
    assert "consumer of sms.inbound stopped" in process.output() and "please fail" not in process.output()


@pytest.mark.parametrize(("outage", "consumers"), [("restart", 1), ("kill -9", 2)])
def test_the_broker_restarted_mid_consume_loses_and_doubles_nothing(
    outage, consumers, consumer, publish, redis_server, redis_client, record_file
):
    # The handler's work (5 ms an event) spreads the run over about a second, so the outage lands mid-way.
    processes = [consumer("record", LIGHTSMS_TEST_WORK_MS="5") for _ in range(consumers)]
    for n in range(EVENTS):
        publish(sms(n))
    wait_until(lambda: len(handled(record_file)) >= EVENTS // 4, timeout=20, message="a quarter handled")
    if outage == "kill -9":
        redis_server.kill()
    redis_server.restart()
    assert len(handled(record_file)) < EVENTS, "the outage came too late to test anything"

    wait_until(lambda: len(handled(record_file)) >= EVENTS, timeout=60, message="every event handled")
    client = redis_server.client(decode_responses=True)
    wait_until(lambda: settled(client), timeout=20, message="the queue drained and every event acked")
    ids = handled(record_file)
    assert sorted(ids) == sorted(f"in-{n}" for n in range(EVENTS)), "an event was lost"
    assert len(ids) == len(set(ids)) == EVENTS, "an event was handled twice"
    for process in processes:
        assert process.alive
        output = process.output()
        # A restart while the consumer is in its handler goes unseen (the next call reconnects); one
        # seen is one line, whatever the number of reconnect attempts, and then its end.
        assert output.count("broker connection lost") == output.count("broker connection back after") <= 1
        assert "Traceback" not in output
    client.close()


def test_a_consumer_killed_holding_an_event_has_it_handled_by_another(consumer, publish, redis_client, record_file):
    publish(sms(1))
    # The first one holds the event in a minute-long handler; a silent consumer counts as dead after 2 s.
    first = consumer("record", LIGHTSMS_TEST_WORK_MS="60000", LIGHTSMS_CONSUMER_DEAD_AFTER="2")
    wait_until(lambda: held(redis_client) == 1, timeout=20, message="the first consumer holding the event")
    first.kill9()
    second = consumer("record", LIGHTSMS_CONSUMER_DEAD_AFTER="2")
    wait_until(lambda: handled(record_file) == ["in-1"], timeout=20, message="the event handled by the second")
    wait_until(lambda: settled(redis_client), timeout=10, message="nothing held any more")
    assert "stopped answering: 1 event(s) it held given back" in second.output()
