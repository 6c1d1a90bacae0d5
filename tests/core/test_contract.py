import time

import pytest

from core import keys
from core.contract import PayloadError, read_payload, send_payload
from core.states import State
from core.store import Store


def test_payload_round_trips_ids_only():
    payload = send_payload(["a", "b"])
    assert payload == {"v": 1, "ids": ["a", "b"]}
    assert read_payload(payload) == ["a", "b"]


@pytest.mark.parametrize("payload", [{"v": 2, "ids": ["a"]}, {"ids": ["a"]}, {"v": 1, "ids": "a"}, ["a"], None])
def test_unknown_or_malformed_payloads_are_refused(payload):
    with pytest.raises(PayloadError):
        read_payload(payload)


def test_a_record_written_by_the_readmes_recipe_is_indexed_where_the_sweeper_looks(redis_client):
    """README, "Enqueue without this package", step 1, done by hand: the sweeper finds the message
    in the queued index of its priority (so a lost step 2 is repaired) and the store reads the record."""
    now = time.time() - 600
    redis_client.hset("sms:msg:foreign", mapping={
        "id": "foreign", "phone": "37060000001", "text": "from another service", "sender": "LightSMS",
        "state": "QUEUED", "priority": "normal", "on_unknown": "hold", "attempts": 0,
        "created_at": now, "queued_at": now,
    })  # fmt: skip
    redis_client.zadd("sms:idx:queued:normal", {"foreign": now})
    assert keys.queued_index("normal") == "sms:idx:queued:normal"
    store = Store(redis_client, record_ttl=3600)
    assert store.ids_in(keys.queued_index("normal"), upto=time.time() - 300) == ["foreign"]
    message = store.get("foreign")
    assert message is not None and message.state is State.QUEUED
    assert read_payload({"v": 1, "ids": ["foreign"]}) == ["foreign"]
