"""Idempotency keys against a real Redis: a key answers only while its message exists, purging a
message releases its key, racing creates make one message, and send_many keys hide the numbers."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid

import pytest

from cli import main as cli
from cli.operations import Operations
from core import keys
from core.message import Message
from core.settings import Settings
from core.states import State
from core.store import Move, Store
from producers.producer import Producer, _key_for

PHONE = "37061234567"
PHONES = ["37061234567", "37062345678", "37063456789"]


@pytest.fixture
def producer(redis_server, redis_client, monkeypatch) -> Producer:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("LIGHTSMS_BASE_URL", "http://127.0.0.1:9/external/get/")
    return Producer(Settings(), redis_client=redis_server.client())


def task_ids(redis_client, queue: str = "sms.normal") -> list[str]:
    """The message ids of every send task waiting in a queue (the broker is the same Redis)."""
    found: list[str] = []
    for raw in redis_client.lrange(queue, 0, -1):
        args, _, _ = json.loads(base64.b64decode(json.loads(raw)["body"]))
        found += args[0]["ids"]
    return found


def kill(producer: Producer, message_id: str) -> None:
    """QUEUED -> DEAD, as the retry policy does when the budget is spent."""
    moved, _ = producer.store.move(Move(message_id, (State.QUEUED,), State.DEAD, score=time.time()))
    assert moved


def records(redis_client) -> list[str]:
    return sorted(redis_client.scan_iter(match=keys.MESSAGE_PREFIX + "*"))


# --- a key answers only while the message it names exists ----------------------------------------


def test_purged_then_resent_with_the_same_key_is_stored_and_queued(producer, redis_client):
    first = producer.send(PHONE, "receipt #1", sender="LightSMS", idempotency_key="order-1")
    kill(producer, first)
    Operations(producer).purge_dead([first])
    assert producer.get(first) is None
    again = producer.send(PHONE, "receipt #1", sender="LightSMS", idempotency_key="order-1")
    assert again != first
    message = producer.store.get(again)
    assert message is not None and message.state is State.QUEUED and message.idempotency_key == "order-1"
    assert again in task_ids(redis_client)
    assert redis_client.get(keys.idempotency("order-1")) == again
    # ... and the key answers for the new message from now on
    assert producer.send(PHONE, "receipt #1", sender="LightSMS", idempotency_key="order-1") == again


@pytest.mark.parametrize("how", ["deleted", "expired"])
def test_a_key_whose_record_is_gone_is_free_again(producer, redis_client, how):
    first = producer.send(PHONE, "hi", sender="LightSMS", idempotency_key="k-gone")
    if how == "deleted":
        redis_client.delete(keys.message(first))  # an operator, by hand
    else:
        redis_client.pexpire(keys.message(first), 1)
        deadline = time.monotonic() + 5
        while redis_client.exists(keys.message(first)) and time.monotonic() < deadline:
            time.sleep(0.01)
    again = producer.send(PHONE, "hi", sender="LightSMS", idempotency_key="k-gone")
    assert again != first and producer.get(again) is not None
    assert redis_client.get(keys.idempotency("k-gone")) == again
    assert 0 < redis_client.ttl(keys.idempotency("k-gone")) <= producer.store.record_ttl


def test_a_key_whose_record_exists_still_answers_in_any_state(producer, redis_client):
    first = producer.send(PHONE, "hi", sender="LightSMS", idempotency_key="k-dead")
    kill(producer, first)  # DEAD but not purged: the caller's retry must not send it again
    assert producer.send(PHONE, "hi", sender="LightSMS", idempotency_key="k-dead") == first
    assert records(redis_client) == [keys.message(first)]


# --- purging releases the key ------------------------------------------------------------------


def test_purge_releases_the_key_it_names_and_counts_it(producer, redis_client):
    keyed = producer.send(PHONE, "a", sender="LightSMS", idempotency_key="k-purge")
    plain = producer.send(PHONES[1], "b", sender="LightSMS")
    for message_id in (keyed, plain):
        kill(producer, message_id)
    assert Operations(producer).purge_dead() == (2, 1)
    assert redis_client.exists(keys.idempotency("k-purge"), keys.message(keyed), keys.message(plain)) == 0
    assert redis_client.zcard(keys.DEAD_INDEX) == 0


def test_purge_leaves_a_key_that_names_another_message(producer, redis_client):
    first = producer.send(PHONE, "a", sender="LightSMS", idempotency_key="k-moved")
    kill(producer, first)
    redis_client.set(keys.idempotency("k-moved"), "someone-else")
    assert Operations(producer).purge_dead([first]) == (1, 0)
    assert redis_client.get(keys.idempotency("k-moved")) == "someone-else"


def test_purge_deletes_nothing_that_left_dead_meanwhile(producer, redis_client):
    message_id = producer.send(PHONE, "a", sender="LightSMS", idempotency_key="k-race")
    message = producer.store.get(message_id)
    assert message is not None
    # Operations saw it DEAD; an operator's `dead retry` queued it again before the purge ran.
    assert producer.store.purge([message]) == [(False, False)]
    assert producer.get(message_id) is not None
    assert redis_client.get(keys.idempotency("k-race")) == message_id


def test_cli_purge_says_how_many_keys_it_released(producer, redis_client, capsys):
    message_id = producer.send(PHONE, "a", sender="LightSMS", idempotency_key="k-cli")
    kill(producer, message_id)
    assert cli.main(["dead", "purge", message_id]) == 0
    assert "purged: 1 (idempotency keys released: 1)" in capsys.readouterr().out
    assert redis_client.exists(keys.idempotency("k-cli")) == 0


# --- racing creates ----------------------------------------------------------------------------


def race(store: Store, key: str, threads: int = 16, rounds: int = 1) -> list[str]:
    """`threads` threads create a message with the same key at once; every id they got back."""
    got: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def create() -> None:
        now = time.time()
        message = Message(id=uuid.uuid4().hex, phone=PHONE, text="hi", sender="LightSMS", state=State.QUEUED,
                          created_at=now, updated_at=now, idempotency_key=key)  # fmt: skip
        barrier.wait()
        ((message_id, _),) = store.create([message])
        with lock:
            got.append(message_id)

    for _ in range(rounds):
        workers = [threading.Thread(target=create) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=30)
    return got


def test_concurrent_creates_with_a_fresh_key_make_one_message(redis_server, redis_client):
    stores = [Store(redis_server.client(), record_ttl=3600) for _ in range(4)]
    for n in range(10):
        got = race(stores[n % len(stores)], f"fresh-{n}")
        assert len(got) == 16 and len(set(got)) == 1
    assert len(records(redis_client)) == 10
    assert redis_client.zcard(keys.queued_index("normal")) == 10


def test_concurrent_creates_on_a_released_key_make_one_message(redis_server, redis_client):
    store = Store(redis_server.client(), record_ttl=3600)
    (old,) = {i for i in race(store, "stale")}
    redis_client.delete(keys.message(old))  # the key now names nothing
    got = race(store, "stale")
    assert len(set(got)) == 1 and got[0] != old
    assert records(redis_client) == [keys.message(got[0])]


# --- send_many: per-recipient keys without the numbers --------------------------------------------


def test_per_recipient_keys_are_a_digest_of_key_and_phone():
    digest = hashlib.sha256(b"campaign-7\x0037061234567").hexdigest()[:32]
    assert _key_for("campaign-7", PHONE, True) == f"campaign-7:{digest}"
    assert _key_for("campaign-7", PHONE, False) == "campaign-7"  # `send` keeps the caller's key
    assert _key_for(None, PHONE, True) is None
    derived = {_key_for(k, p, True) for k in ("a", "b", "a:1") for p in PHONES}
    assert len(derived) == 9


def test_send_many_keys_name_no_phone_number(producer, redis_client, capsys):
    ids = producer.send_many(PHONES, "Sale starts today", sender="LightSMS", idempotency_key="campaign-7")
    names = list(redis_client.scan_iter(match="*"))
    fields = [redis_client.hget(keys.message(i), "idempotency_key") for i in ids]
    assert len(set(fields)) == 3 and all(f.startswith("campaign-7:") for f in fields)
    for phone in PHONES:
        assert not [name for name in names if phone in name]
        assert not [field for field in fields if phone in field]
    for message_id in ids:
        assert cli.main(["get", message_id]) == 0
        out = capsys.readouterr().out
        assert '"idempotency_key": "campaign-7:' in out
        assert not [phone for phone in PHONES if phone in out]


def test_send_many_repeated_returns_the_same_ids_and_sends_nothing_new(producer, redis_client):
    ids = producer.send_many(PHONES, "Sale", sender="LightSMS", idempotency_key="campaign-8")
    tasks = task_ids(redis_client)
    assert sorted(tasks) == sorted(ids)
    assert producer.send_many(PHONES, "Sale", sender="LightSMS", idempotency_key="campaign-8") == ids
    # the same numbers written differently are the same recipients
    assert producer.send_many(["+" + p for p in PHONES], "Sale", sender="LightSMS", idempotency_key="campaign-8") == ids
    assert task_ids(redis_client) == tasks
    assert len(records(redis_client)) == 3
    # one recipient more: only that one is new
    more = producer.send_many([*PHONES, "37064567890"], "Sale", sender="LightSMS", idempotency_key="campaign-8")
    assert more[:3] == ids and more[3] not in ids
    assert len(records(redis_client)) == 4
