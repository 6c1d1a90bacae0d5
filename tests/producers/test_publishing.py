"""How a send task reaches its queue on a Redis broker: by the queue's name, whatever bindings the
broker holds, and shown (in Flower, in the logs) by its message ids."""

from __future__ import annotations

import json

import pytest

from core.settings import Settings
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
