"""`lightsms-queue stats | get | dead list|retry|purge | unknown list` against a real Redis."""

from __future__ import annotations

import time

import pytest

from cli import main as cli
from core import keys
from core.message import Message
from core.pause import AccountCircuit
from core.settings import Settings
from core.states import State
from core.stats import Stats
from core.store import Move
from producers.producer import Producer


@pytest.fixture
def producer(redis_server, redis_client, monkeypatch) -> Producer:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("LIGHTSMS_BASE_URL", "http://127.0.0.1:9/external/get/")
    return Producer(Settings(), redis_client=redis_server.client())


def stored(producer: Producer, state: State, phone: str = "37060000001", **fields: object) -> str:
    now = time.time()
    message = Message(id=f"msg-{phone[-2:]}", phone=phone, text="hi", sender="LightSMS", state=State.QUEUED,
                      created_at=now, updated_at=now)  # fmt: skip
    producer.store.create([message])
    producer.store.move(Move(message.id, (State.QUEUED,), state, score=now, fields=tuple(fields.items())))
    return message.id


def test_stats_prints_every_counter(producer, capsys):
    Stats(producer.store.redis).record({"sent": 3, "failed:16": 1, "dead": 2}, parts=4)
    assert cli.main(["stats"]) == 0
    out = capsys.readouterr().out
    for line in ("sent", "failed:16", "dead", "parts"):
        assert line in out
    assert " 3" in out.splitlines()[[i for i, line in enumerate(out.splitlines()) if line.startswith("sent")][0]]


def test_dead_list_shows_the_reason_with_the_phone_masked(producer, capsys):
    stored(producer, State.DEAD, attempts=8, error_meaning="connection refused")
    assert cli.main(["dead", "list"]) == 0
    out = capsys.readouterr().out
    assert "msg-01" in out and "connection refused" in out and "attempts=8" in out
    assert "37060000001" not in out


def test_dead_retry_queues_again_with_a_fresh_budget(producer, redis_client, capsys):
    message_id = stored(producer, State.DEAD, attempts=8)
    assert cli.main(["dead", "retry"]) == 0
    assert "queued again: 1" in capsys.readouterr().out
    message = producer.store.get(message_id)
    assert message is not None and (message.state, message.attempts) == (State.QUEUED, 0)
    assert redis_client.zscore(keys.DEAD_INDEX, message_id) is None
    assert redis_client.llen("sms.normal") == 1


def test_dead_purge_deletes_only_dead_records(producer, redis_client, capsys):
    dead = stored(producer, State.DEAD, phone="37060000001")
    alive = stored(producer, State.UNKNOWN, phone="37060000002")
    assert cli.main(["dead", "purge", dead, alive]) == 1  # one named id was not DEAD: said, and exit 1
    assert "purged: 1 (idempotency keys released: 0)" in capsys.readouterr().out
    assert producer.get(dead) is None and producer.get(alive) is not None


def test_unknown_list_and_get(producer, capsys):
    message_id = stored(producer, State.UNKNOWN, error_code="lease_expired")
    assert cli.main(["unknown", "list"]) == 0
    assert message_id in capsys.readouterr().out
    assert cli.main(["get", message_id]) == 0
    out = capsys.readouterr().out
    assert '"state": "UNKNOWN"' in out and "37060000001" not in out
    assert cli.main(["get", "nope"]) == 1


def test_bad_configuration_is_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", "127.0.0.1:6379")
    assert cli.main(["stats"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lightsms-queue: configuration error: REDIS_URL:") and "\n" not in err and "6379" not in err


def test_stats_shows_every_pause_without_a_lightsms_login(producer, redis_client, monkeypatch, capsys):
    # An operator's shell holds REDIS_URL only: no credentials, and the production base URL.
    for variable in ("LIGHTSMS_LOGIN", "LIGHTSMS_API_KEY", "LIGHTSMS_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    AccountCircuit(redis_client, login="acme").pause(reason="insufficient funds", code=32, seconds=300)
    AccountCircuit(redis_client, login="other").pause(reason="invalid login", code=7, seconds=300)
    assert cli.main(["stats"]) == 0
    out = capsys.readouterr().out
    paused = {line.split()[0]: line for line in out.splitlines() if line.startswith("paused")}
    assert set(paused) == {"paused:acme", "paused:other"}  # the strikes keys are not pauses
    assert "insufficient funds (code 32)" in paused["paused:acme"] and "yes, until" in paused["paused:acme"]
    assert "invalid login (code 7)" in paused["paused:other"]
    AccountCircuit(redis_client, login="acme").resume()
    AccountCircuit(redis_client, login="other").resume()
    assert cli.main(["stats"]) == 0
    assert [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("paused")] == [
        ["paused", "no"]
    ]


def test_the_other_commands_need_only_redis_url(producer, monkeypatch, capsys):
    for variable in ("LIGHTSMS_LOGIN", "LIGHTSMS_API_KEY", "LIGHTSMS_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    message_id = stored(producer, State.DEAD, attempts=8)
    for argv in (["get", message_id], ["dead", "list"], ["unknown", "list"], ["dead", "retry", message_id]):
        assert cli.main(argv) == 0, argv
    assert "queued again: 1" in capsys.readouterr().out


VERDICTS = [("sent", State.SENT), ("failed", State.FAILED), ("resend", State.QUEUED)]


@pytest.mark.parametrize(("verdict", "state"), VERDICTS)
def test_an_operator_settles_unknown_messages_one_by_one(producer, redis_client, capsys, verdict, state):
    message_id = stored(producer, State.UNKNOWN)
    assert cli.main(["unknown", verdict]) == 2  # never all at once: each is a decision
    assert cli.main(["unknown", verdict, message_id]) == 0
    assert f"settled as {verdict}: 1" in capsys.readouterr().out
    message = producer.store.get(message_id)
    assert message is not None and message.state is state
    assert redis_client.zscore(keys.UNKNOWN_INDEX, message_id) is None
    assert redis_client.llen("sms.normal") == (1 if verdict == "resend" else 0)
