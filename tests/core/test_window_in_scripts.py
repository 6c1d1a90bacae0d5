"""The arrival window inside the store's scripts (core/lua/window.lua): a place entered by the claim
only with its slot and mark (claim.lua), and ended with the outcome's moves (transition.lua). What
each must never do: leave a place in the window for a batch it did not mark, mark a batch without a
place, or end a place that is not the caller's."""

from __future__ import annotations

import time

import pytest
import redis

from core.arrival_window import ArrivalWindow
from core.states import State
from core.store import Move, PlacesEnded, Slot, Store
from tests.core.test_arrival_window import redis_now, window
from tests.core.test_store import _checked, queued

SLOT = Slot("sms:limiter:demo", 1_000)
NO_PAUSE = "sms:pause:none"


@pytest.fixture
def store(redis_server, redis_client) -> Store:
    return Store(redis_server.client(), record_ttl=3600)


def places(client: redis.Redis, gate: ArrivalWindow) -> dict[str, float]:
    """Each place's end (or bound), in seconds of Redis TIME."""
    return {member: score / 1e6 for member, score in client.zrange(gate.key, 0, -1, withscores=True)}


def claim(store: Store, ids: list[str], gate: ArrivalWindow, *, lease: str = "L1"):
    place, entry = gate.offer()
    result = store.claim_to_send(ids, lease=lease, lease_seconds=30, pause_key=NO_PAUSE, slot=SLOT, max_wait=0.02,
                                 place=entry)  # fmt: skip
    return place, result


def test_a_claim_that_marks_enters_its_place_with_the_slot(store, redis_client):
    gate = window(redis_client, limit=2, deadline=7.0)
    store.create([_checked("a")])
    place, result = claim(store, ["a"], gate)
    assert result.marked_wait is not None and redis_client.hget("sms:msg:a", "inflight") == "1"
    under_way_until = places(redis_client, gate)[place.member]
    assert 7.9 < under_way_until - redis_now(redis_client) <= 8.0  # the deadline and a second, as enter gives


def test_a_full_window_leaves_the_claim_unmarked_with_no_slot_and_no_place(store, redis_client):
    gate = window(redis_client, limit=1)
    gate.enter("send.php", patience=0.0)  # the one place of the second
    store.create([_checked("a")])
    place, result = claim(store, ["a"], gate)
    assert [m.id for m in result.messages] == ["a"]  # claimed all the same: the send waits for room
    assert result.marked_wait is None and result.next_slot_in is None
    assert redis_client.hget("sms:msg:a", "inflight") == "0"
    assert redis_client.get(SLOT.key) is None  # no slot spent
    assert place.member not in places(redis_client, gate) and len(places(redis_client, gate)) == 1


@pytest.mark.parametrize("why", ["no slot near", "not markable (not checked by our producer)"])
def test_a_claim_that_does_not_mark_leaves_no_place(store, redis_client, why):
    gate = window(redis_client, limit=5)
    if why == "no slot near":
        redis_client.set(SLOT.key, int((time.time() + 5) * 1_000_000), px=60_000)
        store.create([_checked("a")])
    else:
        store.create([queued("a")])
    place, result = claim(store, ["a"], gate)
    assert result.marked_wait is None and places(redis_client, gate) == {}


def test_a_claim_run_again_after_its_reply_was_lost_takes_its_place_out(store, redis_client):
    """redis-py runs a call again when its reply is lost: the second run marks nothing (the messages
    are ours already), so the first run's place must not stay to hold room until its bound."""
    gate = window(redis_client, limit=5)
    store.create([_checked("a")])
    place, entry = gate.offer()
    args = dict(lease="L1", lease_seconds=30, pause_key=NO_PAUSE, slot=SLOT, max_wait=0.02, place=entry)
    assert store.claim_to_send(["a"], **args).marked_wait is not None  # type: ignore[arg-type]
    assert place.member in places(redis_client, gate)
    again = store.claim_to_send(["a"], **args)  # type: ignore[arg-type]
    assert [m.id for m in again.messages] == ["a"] and again.marked_wait is None
    assert place.member not in places(redis_client, gate)
    # nor its in-flight mark: the batch now waits for its slot or room unmarked (a worker lost
    # meanwhile leaves it to be queued again, not UNKNOWN), and its first attempt marks it itself
    assert redis_client.hget("sms:msg:a", "inflight") == "0" and not again.messages[0].inflight


def test_a_claim_run_again_leaves_a_mark_that_is_not_its_own(store, redis_client):
    """Only the claim's own mark (CLAIM_MARK) is taken out: one an attempt made (begin_send, a mark
    of its own) means a request may have started, and stays."""
    gate = window(redis_client, limit=5)
    store.create([_checked("a")])
    claim(store, ["a"], gate)
    assert store.begin_send(["a"], lease="L1", lease_seconds=30, mark="attempt-2") == {"a"}
    _, again = claim(store, ["a"], gate)
    assert redis_client.hget("sms:msg:a", "inflight") == "1" and again.messages[0].inflight


def test_places_need_a_move_to_end_with(store, redis_client):
    with pytest.raises(ValueError, match="end with a move"):
        store.apply([], ended=PlacesEnded("sms:arrivals:demo", ("m",)))


def test_the_outcome_ends_its_places_whether_or_not_a_move_is_made(store, redis_client):
    gate = window(redis_client, limit=5, deadline=7.0)
    one, other = gate.enter("send.php", patience=0.0), gate.enter("send.php", patience=0.0)
    untouched = gate.enter("send.php", patience=0.0)
    store.create([queued("a")])
    moves = [Move("a", (State.QUEUED,), State.FAILED), Move("gone", (State.QUEUED,), State.FAILED)]
    ended = PlacesEnded(gate.key, (one.member, other.member))
    assert [ok for ok, _ in store.apply(moves, ended=ended)] == [True, False]
    now, ends = redis_now(redis_client), places(redis_client, gate)
    assert now - 0.5 < ends[one.member] <= now and now - 0.5 < ends[other.member] <= now
    assert ends[untouched.member] > now + 7  # another request's place is not the caller's to end
    assert redis_client.hgetall("sms:stats") == {}  # the counters' trailer it rides on counts nothing
    # run again (its reply lost): nothing moves twice, the places end again, a moment later
    assert [ok for ok, _ in store.apply(moves, ended=ended)] == [False, False]
    assert places(redis_client, gate)[one.member] >= ends[one.member]


def test_a_place_already_gone_is_not_put_back_by_its_end(store, redis_client):
    gate = window(redis_client, limit=5)
    freed = gate.enter("send.php", patience=0.0)
    redis_client.zrem(gate.key, freed.member)  # its request never connected: freed at once
    store.create([queued("a")])
    store.apply([Move("a", (State.QUEUED,), State.FAILED)], ended=PlacesEnded(gate.key, (freed.member,)))
    assert freed.member not in places(redis_client, gate)


def test_places_end_once_over_many_chunks_with_the_counters_in_step(store, redis_client):
    gate = window(redis_client, limit=5)
    place = gate.enter("send.php", patience=0.0)
    ids = [f"m{i}" for i in range(250)]
    store.create([queued(i) for i in ids])
    moves = [Move(i, (State.QUEUED,), State.FAILED, counter="failed:local") for i in ids]
    store.apply(moves, amounts={"parts": 7}, ended=PlacesEnded(gate.key, (place.member,)))
    assert redis_client.hgetall("sms:stats") == {"failed:local": "250", "parts": "7"}
    assert places(redis_client, gate)[place.member] <= redis_now(redis_client)
