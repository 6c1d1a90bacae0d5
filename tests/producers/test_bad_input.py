"""Bad input at the producer: one test per rule; a typed error naming the field, nothing stored or enqueued."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta

import pytest
import redis

from core import keys
from core.settings import Settings
from lightsms.errors import InvalidInput
from producers.producer import Producer
from producers.validation import OptedOutError


@pytest.fixture
def producer(redis_server, redis_client: redis.Redis) -> Producer:
    settings = Settings(
        redis_url=redis_server.url, lightsms_base_url="http://127.0.0.1:9/external/get/",
        lightsms_sender="LightSMS", lightsms_max_parts=2, lightsms_batch_size=50,
    )  # fmt: skip
    return Producer(settings, redis_client=redis_server.client())


GOOD = "37060000001"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda p: p.send("12345", "hi"), "phone"),
        (lambda p: p.send("+1 555 000", "hi"), "phone"),
        (lambda p: p.send(37060000001, "hi"), "phone"),
        (lambda p: p.send(GOOD, ""), "text"),
        (lambda p: p.send(GOOD, "   "), "text"),
        (lambda p: p.send(GOOD, "x" * 307), "text"),  # three GSM-7 parts, the maximum is two
        (lambda p: p.send(GOOD, "я" * 135), "text"),  # three UCS-2 parts
        (lambda p: p.send(GOOD, None), "text"),
        (lambda p: p.send(GOOD, "hi", sender="x"), "sender"),
        (lambda p: p.send(GOOD, "hi", sender="Way-Too-Long-Name"), "sender"),
        (lambda p: p.send(GOOD, "hi", sender="Bad!Name"), "sender"),
        (lambda p: p.send(GOOD, "hi", sender="1234567890123456"), "sender"),
        (lambda p: p.send(GOOD, "hi", send_at=time.time() - 60), "send_at"),
        (lambda p: p.send(GOOD, "hi", send_at=time.time() + 400 * 86400), "send_at"),
        (lambda p: p.send(GOOD, "hi", send_at=datetime.now() + timedelta(hours=1)), "send_at"),
        (lambda p: p.send(GOOD, "hi", send_at="tomorrow"), "send_at"),
        (lambda p: p.send(GOOD, "hi", valid_for=0), "valid_for"),
        (lambda p: p.send(GOOD, "hi", valid_for=timedelta(seconds=-5)), "valid_for"),
        (lambda p: p.send(GOOD, "hi", on_unknown="maybe"), "on_unknown"),
        (lambda p: p.send(GOOD, "hi", priority="urgent"), "priority"),
        (lambda p: p.send(GOOD, "hi", metadata={"when": object()}), "metadata"),
        (lambda p: p.send(GOOD, "hi", metadata={"blob": "x" * 5000}), "metadata"),
        (lambda p: p.send(GOOD, "hi", idempotency_key=""), "idempotency_key"),
        (lambda p: p.send(GOOD, "hi", idempotency_key="k" * 201), "idempotency_key"),
        (lambda p: p.send_many([], "hi"), "phones"),
        (lambda p: p.send_many(GOOD, "hi"), "phones"),
        (lambda p: p.send_many([GOOD, "37060000002", "nope"], "hi"), "phones[2]"),
        (lambda p: p.send_many([GOOD, "+370 600 00001"], "hi"), "phones[1]"),
        (lambda p: p.send_many([GOOD, 37060000002], "hi"), "phones[1]"),
    ],
)
def test_each_rule_names_its_field_and_nothing_is_stored(producer: Producer, redis_client, call, field):
    with pytest.raises(InvalidInput) as info:
        call(producer)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    assert redis_client.dbsize() == 0, "something was stored or enqueued"


def test_no_sender_anywhere_is_refused(redis_server, redis_client):
    settings = Settings(redis_url=redis_server.url, lightsms_base_url="http://127.0.0.1:9/external/get/")
    with pytest.raises(InvalidInput) as info:
        Producer(settings, redis_client=redis_server.client()).send(GOOD, "hi")
    assert info.value.field == "sender"
    assert redis_client.dbsize() == 0


def test_an_opted_out_recipient_is_refused(producer: Producer, redis_client):
    redis_client.sadd(keys.OPT_OUT, "37060000002")
    with pytest.raises(OptedOutError) as info:
        producer.send_many([GOOD, "37060000002"], "hi")
    assert info.value.field == "phones[1]"
    assert redis_client.keys("*") == [keys.OPT_OUT]


def test_valid_input_is_stored_and_enqueued(producer: Producer, redis_client):
    message_id = producer.send("+370 600 00001", "hi", metadata={"order": 7}, priority="high")
    stored = producer.get(message_id)
    assert stored is not None
    assert (stored["phone"], stored["state"], stored["metadata"]) == (GOOD, "QUEUED", {"order": 7})
    assert redis_client.llen("sms.high") == 1
    task = redis_client.lindex("sms.high", 0)
    body = base64.b64decode(json.loads(task)["body"]).decode()
    assert json.loads(body)[0] == [{"v": 1, "ids": [message_id]}]
    assert GOOD not in task and GOOD not in body, "a phone number reached the broker"


def test_a_broker_failure_after_storing_returns_the_id_instead_of_inviting_a_retry(redis_server, redis_client):
    from celery import Celery

    settings = Settings(redis_url=redis_server.url, lightsms_base_url="http://127.0.0.1:9/external/get/",
                        lightsms_sender="LightSMS")  # fmt: skip
    dead_broker = Celery(broker="redis://127.0.0.1:9/0", set_as_current=False)
    dead_broker.conf.update(broker_connection_retry=False, broker_connection_max_retries=0,
                            task_publish_retry=False, broker_connection_timeout=0.5)  # fmt: skip
    producer = Producer(settings, redis_client=redis_server.client(), celery_app=dead_broker)
    message_id = producer.send(GOOD, "hi")
    stored = producer.get(message_id)
    assert stored is not None and stored["state"] == "QUEUED"
    assert redis_client.zscore(keys.queued_index("normal"), message_id) is not None  # the sweeper will find it


def test_provider_schedule_needs_a_future_send_at(producer: Producer, redis_client):
    with pytest.raises(InvalidInput) as info:
        producer.send(GOOD, "hi", provider_schedule=True)
    assert info.value.field == "provider_schedule"
    assert redis_client.dbsize() == 0
