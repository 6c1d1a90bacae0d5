"""How a send task reaches its queue on a Redis broker: by the queue's name, whatever bindings the
broker holds, and shown (in Flower, in the logs) by its message ids."""

from __future__ import annotations

import base64
import json

import pytest

from core.settings import CoreSettings, Settings
from producers.celery_client import ARGSREPR_MAX, shown
from producers.producer import Producer


@pytest.fixture
def producer(redis_server, monkeypatch) -> Producer:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("LIGHTSMS_BASE_URL", "http://127.0.0.1:9/external/get/")
    monkeypatch.setenv("LIGHTSMS_SENDER", "LightSMS")
    return Producer(Settings(), redis_client=redis_server.client())


def test_a_task_reaches_its_queue_on_a_broker_that_lost_every_binding(producer, redis_client):
    first = producer.send("37061234567", "hello")
    # A broker Redis that restarted empty has no kombu bindings left, while this producer's
    # connection still remembers having declared its queues: the task must get there all the same.
    for key in redis_client.scan_iter("_kombu.binding.*"):
        redis_client.delete(key)
    second = producer.send("37062345678", "hello")
    tasks = [json.loads(raw) for raw in redis_client.lrange("sms.normal", 0, -1)]
    assert len(tasks) == 2
    shown_args = [task["headers"]["argsrepr"] for task in tasks]
    assert any(first in text for text in shown_args) and any(second in text for text in shown_args)
    assert all(task["headers"]["kwargsrepr"] == "{}" for task in tasks)
    # the producer normalized each phone: its records say so, and the worker does not check them again
    assert redis_client.hget(f"sms:msg:{first}", "phone_checked") == "1"
    assert "phone_checked" not in producer.get(first)


def test_the_arguments_shown_are_cut_as_celery_cuts_them():
    few = [{"v": 1, "ids": ["a" * 32]}]
    assert shown(few) == repr(few)
    many = [{"v": 1, "ids": ["b" * 32] * 100}]
    assert len(shown(many)) == ARGSREPR_MAX and shown(many).endswith("...")


def _tasks(client, queue: str = "sms.normal") -> list[list[str]]:
    """The message ids each task in the queue names, oldest first."""
    return [json.loads(raw)["headers"]["argsrepr"] for raw in reversed(client.lrange(queue, 0, -1))]


def test_a_send_on_the_store_s_own_redis_writes_its_record_and_its_task_in_one_call(producer, redis_server,
                                                                                     redis_client):  # fmt: skip
    first = producer.send("37061234567", "hello")  # the broker connection is made here, after the record
    seen: list[tuple[str, str]] = []
    with redis_server.client(decode_responses=True).monitor() as monitor:
        second = producer.send("37062345678", "hello")
        redis_client.echo("end of the send")
        while (command := monitor.next_command())["command"] != "ECHO end of the send":
            seen.append((command["client_type"], command["command"].split()[0].upper()))
    assert [name for who, name in seen if who != "lua"] == ["EVALSHA"], seen  # one round trip
    assert ("lua", "LPUSH") in seen
    shown_tasks = _tasks(redis_client)
    assert len(shown_tasks) == 2 and first in shown_tasks[0] and second in shown_tasks[1]


def test_a_queue_that_cannot_take_the_task_still_leaves_the_message_stored_and_the_caller_its_id(
    producer, redis_client, caplog
):
    producer.send("37061234567", "warm-up")
    redis_client.delete("sms.normal")
    redis_client.set("sms.normal", "written over by hand")
    message_id = producer.send("37062345678", "hello")  # no error: the record is safe, the sweeper requeues it
    assert producer.get(message_id)["state"] == "QUEUED"
    assert "could not publish their task" in caplog.text


def test_a_repeat_or_a_refused_recipient_pushes_no_task(producer, redis_client):
    from producers.validation import OptedOutError

    producer.send("37061234567", "warm-up")
    kept = producer.send("37062345678", "hello", idempotency_key="k")
    assert producer.send("37062345678", "hello", idempotency_key="k") == kept
    redis_client.sadd("sms:optout", "37063456789")
    with pytest.raises(OptedOutError):
        producer.send("37063456789", "hello")
    assert len(_tasks(redis_client)) == 2
    # a send_many in which some recipients are repeats: a task for the new one alone, published after
    [a, b] = producer.send_many(["37064000001", "37064000002"], "hi", idempotency_key="m")
    ids = producer.send_many(["37064000001", "37064000002", "37064000003"], "hi", idempotency_key="m")
    assert ids[:2] == [a, b] and len(_tasks(redis_client)) == 4
    [payload], _, _ = json.loads(base64.b64decode(json.loads(redis_client.lindex("sms.normal", 0))["body"]))
    assert payload["ids"] == [ids[2]]


@pytest.mark.parametrize(
    "broker",
    [
        pytest.param({"CELERY_BROKER_URL": "db1"}, id="another database"),
        pytest.param({"CELERY_BROKER_TRANSPORT_OPTIONS": '{"global_keyprefix": "pfx:"}'}, id="a key prefix"),
    ],
)
def test_a_broker_the_store_s_script_cannot_write_gets_its_tasks_after_the_records(
    redis_server, redis_client, monkeypatch, broker
):
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("LIGHTSMS_SENDER", "LightSMS")
    for name, value in broker.items():
        monkeypatch.setenv(name, redis_server.url.rsplit("/", 1)[0] + "/1" if value == "db1" else value)
    producer = Producer(CoreSettings(), redis_client=redis_server.client())
    ids = [producer.send("37061234567", "hello"), producer.send("37062345678", "hello")]
    assert redis_client.llen("sms.normal") == 0  # nothing pushed where the broker does not read
    if "CELERY_BROKER_URL" in broker:
        broker_client = redis_server.client(db=1, decode_responses=True)
        queue = "sms.normal"
    else:
        broker_client, queue = redis_client, "pfx:sms.normal"
    shown_tasks = _tasks(broker_client, queue)
    assert len(shown_tasks) == 2 and all(i in text for i, text in zip(ids, shown_tasks, strict=True))


def test_a_store_and_a_broker_on_one_redis_as_different_users_each_keep_to_their_own_keys(
    redis_server, redis_client, monkeypatch
):
    redis_client.acl_setuser("store", enabled=True, passwords=["+s"], keys=["sms:*"], commands=["+@all"])
    redis_client.acl_setuser("broker", enabled=True, passwords=["+b"], keys=["*"], commands=["+@all"])
    try:
        where = f"127.0.0.1:{redis_server.port}/0"
        monkeypatch.setenv("REDIS_URL", f"redis://store:s@{where}")
        monkeypatch.setenv("CELERY_BROKER_URL", f"redis://broker:b@{where}")
        monkeypatch.setenv("LIGHTSMS_SENDER", "LightSMS")
        producer = Producer(CoreSettings())
        ids = [producer.send("37061234567", "hello"), producer.send("37062345678", "hello")]
        shown_tasks = _tasks(redis_client)
        assert len(shown_tasks) == 2 and all(i in text for i, text in zip(ids, shown_tasks, strict=True))
    finally:
        redis_client.acl_deluser("store", "broker")
