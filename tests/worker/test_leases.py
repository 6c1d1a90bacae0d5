"""The lease keeper against a real Redis: a lease in hand is renewed, one let go of is not, and a
message someone else has taken is never renewed."""

from __future__ import annotations

import time

import pytest

from core import keys
from core.message import Message
from core.states import State
from core.store import Move, Store
from tests.support.polling import wait_until
from worker.leases import LeaseKeeper


@pytest.fixture
def store(redis_server, redis_client) -> Store:
    return Store(redis_server.client(), record_ttl=3600)


def claimed(store: Store, ids: list[str], *, lease: str, seconds: float) -> None:
    now = time.time()
    store.create([Message(id=i, phone="37060000001", text="hi", sender="LightSMS", state=State.QUEUED,
                          created_at=now, updated_at=now) for i in ids])  # fmt: skip
    until = store.now() + seconds
    store.apply([Move(i, (State.QUEUED,), State.SENDING, score=until,
                      fields=(("lease", lease), ("lease_until", until))) for i in ids])  # fmt: skip


def lease_until(redis_client, message_id: str) -> float:
    return float(redis_client.hget(keys.message(message_id), "lease_until"))


def test_a_lease_in_hand_outlives_its_length_and_stops_when_let_go(store, redis_client):
    keeper = LeaseKeeper(store, lease_seconds=0.9)
    claimed(store, ["a", "b"], lease="L1", seconds=0.9)
    first = lease_until(redis_client, "a")
    with keeper.holding("L1", ["a", "b"]):
        wait_until(lambda: lease_until(redis_client, "a") > first + 1.0, timeout=5, message="no renewal")
        assert store.now() < lease_until(redis_client, "b")  # still ours, long after 0.9 s
        assert redis_client.hget(keys.message("a"), "inflight") != "1"  # renewing starts no request
        assert redis_client.zscore(keys.SENDING_INDEX, "b") == pytest.approx(lease_until(redis_client, "b"))
    last = lease_until(redis_client, "a")
    wait_until(lambda: store.now() > last + 0.6, timeout=5)
    assert lease_until(redis_client, "a") == last  # let go: no more renewals


def test_a_message_taken_from_the_lease_or_whose_lease_ran_out_is_not_renewed(store, redis_client):
    keeper = LeaseKeeper(store, lease_seconds=30)
    claimed(store, ["a", "b", "c"], lease="L1", seconds=30)
    store.move(Move("b", (State.SENDING,), State.UNKNOWN, lease="L1"))
    expired = store.now() - 5
    redis_client.hset(keys.message("c"), "lease_until", expired)  # ran out: the sweeper's, as begin_send holds
    with keeper.holding("L1", ["a", "b", "c"]):
        assert keeper.renew_all() == 1
    assert lease_until(redis_client, "a") > store.now() + 25
    assert lease_until(redis_client, "c") == pytest.approx(expired)
    assert redis_client.hget(keys.message("b"), "state") == "UNKNOWN"
    assert redis_client.zscore(keys.SENDING_INDEX, "b") is None
