"""The Lua compare-and-set scripts against a real Redis: every move atomic, indexes kept in step."""

from __future__ import annotations

import time

import pytest

from core import keys
from core.message import Message
from core.states import State
from core.store import Move, Store


@pytest.fixture
def store(redis_server, redis_client) -> Store:
    return Store(redis_server.client(), record_ttl=3600)


def queued(message_id: str, *, priority: str = "normal", key: str | None = None) -> Message:
    now = time.time()
    return Message(id=message_id, phone="37060000001", text="hi", sender="LightSMS", state=State.QUEUED,
                   priority=priority, created_at=now, updated_at=now, idempotency_key=key)  # fmt: skip


def indexes_of(redis_client, message_id: str) -> list[str]:
    return [index for index in keys.INDEXES if redis_client.zscore(index, message_id) is not None]


def test_create_indexes_by_priority_and_honours_idempotency_keys(store, redis_client):
    assert store.create([queued("a", priority="bulk", key="k1")]) == [("a", True)]
    assert store.create([queued("b", key="k1")]) == [("a", False)]
    assert redis_client.exists("sms:msg:b") == 0
    assert indexes_of(redis_client, "a") == [keys.queued_index("bulk")]


def test_a_move_happens_once_and_only_from_an_allowed_state(store, redis_client):
    store.create([queued("a")])
    claim = Move("a", (State.QUEUED,), State.SENDING, score=99.0, fields=(("lease", "L1"),))
    assert store.move(claim) == (True, "QUEUED")
    assert store.move(claim) == (False, "SENDING")  # a second claimer finds it taken
    assert indexes_of(redis_client, "a") == [keys.SENDING_INDEX]


def test_moving_out_of_sending_needs_the_lease(store, redis_client):
    store.create([queued("a")])
    store.move(Move("a", (State.QUEUED,), State.SENDING, fields=(("lease", "L1"),)))
    assert store.move(Move("a", (State.SENDING,), State.SENT, lease="L2", ttl=60)) == (False, "SENDING")
    assert store.move(Move("a", (State.SENDING,), State.SENT, lease="L1", ttl=60)) == (True, "SENDING")
    assert indexes_of(redis_client, "a") == []
    assert 0 < redis_client.ttl("sms:msg:a") <= 60


def test_a_field_condition_guards_the_move(store):
    store.create([queued("a")])
    store.move(Move("a", (State.QUEUED,), State.SENDING, fields=(("lease", "L1"), ("inflight", "1"))))
    back = Move("a", (State.SENDING,), State.QUEUED, lease="L1", when=("inflight", "0"))
    assert store.move(back) == (False, "SENDING")


def test_begin_send_refuses_messages_taken_from_us(store, redis_client):
    store.create([queued("a"), queued("b"), queued("c")])
    lease_until = store.now() + 30
    for message_id in "abc":
        store.move(Move(message_id, (State.QUEUED,), State.SENDING,
                        fields=(("lease", "L1"), ("inflight", "0"), ("lease_until", lease_until))))  # fmt: skip
    # "c"'s lease ran out: not ours any more, even before the sweeper has seen it
    redis_client.hset("sms:msg:c", "lease_until", store.now() - 1)
    # the sweeper took "b" back while our worker stalled
    store.move(Move("b", (State.SENDING,), State.QUEUED, lease="L1", when=("inflight", "0")))
    assert store.begin_send(["a", "b", "c"], lease="L1", lease_seconds=30) == {"a"}
    assert redis_client.hget("sms:msg:a", "inflight") == "1"
    assert redis_client.zscore(keys.SENDING_INDEX, "a") > store.now() + 25
    # ... and once in flight, the sweeper can no longer queue it again
    assert store.move(Move("a", (State.SENDING,), State.QUEUED, lease="L1", when=("inflight", "0")))[0] is False


def test_the_sweeper_moves_a_message_only_while_its_lease_has_run_out(store, redis_client):
    store.create([queued("a")])
    store.move(Move("a", (State.QUEUED,), State.SENDING,
                    fields=(("lease", "L1"), ("inflight", "1"), ("lease_until", store.now() + 30))))  # fmt: skip
    now = store.now()
    # the sweeper read it as expired a moment ago, but the worker renewed the lease since
    stale = Move("a", (State.SENDING,), State.UNKNOWN, lease="L1", when=("inflight", "1"), expired_by=now)
    assert store.move(stale) == (False, "SENDING")
    redis_client.hset("sms:msg:a", "lease_until", now - 1)
    assert store.move(stale) == (True, "SENDING")


def test_pop_due_queues_what_is_due_and_skips_cancelled(store, redis_client):
    later = queued("later")
    store.create([queued("a", priority="high"), queued("c"), later])
    now = time.time()
    store.move(Move("a", (State.QUEUED,), State.DEFERRED, score=now - 1))
    store.move(Move("c", (State.QUEUED,), State.DEFERRED, score=now - 1))
    store.move(Move("c", (State.DEFERRED,), State.CANCELLED))
    store.move(Move("later", (State.QUEUED,), State.DEFERRED, score=now + 60))
    redis_client.zadd(keys.DUE_INDEX, {"c": now - 1})  # a stale entry
    assert store.pop_due(now=now, limit=10) == [("a", "high")]
    assert indexes_of(redis_client, "a") == [keys.queued_index("high")]
    assert redis_client.zscore(keys.DUE_INDEX, "c") is None
    assert redis_client.zscore(keys.DUE_INDEX, "later") is not None


def test_an_unreadable_record_reads_as_missing(store, redis_client):
    redis_client.hset("sms:msg:x", mapping={"id": "x", "state": "BOGUS"})
    store.create([queued("a")])
    assert [m.id if m else None for m in store.get_many(["x", "a"])] == [None, "a"]
