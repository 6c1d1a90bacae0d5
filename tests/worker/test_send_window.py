"""The send path and the arrival window (core/arrival_window.py): a batch takes its place before it
is marked in flight, so a wait for room, or a shutdown during it, never leaves a message marked (and
later UNKNOWN) that was never sent; no room at all defers the batch without spending its budget."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis

from core import keys
from core.arrival_window import HELD_FRESH, ArrivalWindow
from core.redis_client import FAIL_FAST
from core.states import State
from lightsms.errors import ThrottledError
from tests.core.test_arrival_window import ends_in
from tests.worker.harness import PHONES, Harness, accepted


def full_window(client: redis.Redis, *, sleep: Callable[[float], None] | None = None) -> ArrivalWindow:
    """A window of one place, taken by a request still under way in another process."""
    options = {"sleep": sleep} if sleep else {}
    window = ArrivalWindow(client, login="demo", limit=1, request_deadline=5.0, patience=1.0, **options)
    window.enter("send.php", patience=0)
    return window


@pytest.fixture
def sending(redis_server) -> Callable[..., Harness]:
    return lambda window, **settings: Harness(redis_server.client(), lambda phones: [accepted(p) for p in phones],
                                              window=window, **settings)  # fmt: skip


def marked(client: redis.Redis, ids: list[str]) -> list[bool]:
    return [client.hget(keys.message(i), "inflight") not in (None, "0") for i in ids]


@pytest.mark.parametrize("checked", [True, False], ids=["one-call-task", "checked-by-the-worker"])
def test_a_shutdown_while_waiting_for_room_leaves_nothing_marked_and_the_messages_queued(
    sending, redis_client, checked
):
    seen: list[list[str | None]] = []

    def shutdown(seconds: float) -> None:
        seen.append(marked(redis_client, ids))  # what a kill -9 here would leave
        raise KeyboardInterrupt

    h = sending(full_window(redis_client, sleep=shutdown))
    ids = h.enqueue([PHONES[0]], phone_checked=True) if checked else h.enqueue()
    with pytest.raises(KeyboardInterrupt):
        h.sender.run(ids)
    assert seen == [[False] * len(ids)]  # waiting for room, unmarked
    assert h.client.calls == []
    assert h.states(ids) == [State.QUEUED] * len(ids)
    assert sorted(h.requeued) == [(i, "normal") for i in ids]
    assert redis_client.zcard(keys.arrival_window("demo")) == 1  # only the other process's place


def test_no_room_in_the_window_defers_the_batch_without_spending_its_budget(sending, redis_client):
    h = sending(full_window(redis_client), lightsms_limiter_max_wait=0.05, lightsms_retry_window=0.2)
    ids = h.enqueue()
    h.sender.run(ids)
    assert h.client.calls == []
    records = h.store.get_many(ids)
    assert [m.state for m in records] == [State.DEFERRED] * 3
    assert [m.attempts for m in records] == [0, 0, 0]  # waiting for the limit is no failure
    assert marked(redis_client, ids) == [False] * 3
    assert redis_client.zcard(keys.arrival_window("demo")) == 1


@pytest.mark.parametrize("checked", [True, False], ids=["one-call-task", "checked-by-the-worker"])
def test_a_batch_sent_holds_one_place_ended_after_its_reply_and_leaves_none_held(sending, redis_client, checked):
    window = ArrivalWindow(redis_client, login="demo", limit=5, request_deadline=5.0, patience=1.0)
    h = sending(window)
    ids = h.enqueue([PHONES[0]], phone_checked=True) if checked else h.enqueue()
    h.sender.run(ids)
    assert h.states(ids) == [State.SENT] * len(ids) and len(h.client.calls) == 1
    [ends] = ends_in(redis_client, window.key)
    assert -1.0 < ends <= 0  # ended with its reply, not at its bound
    assert window._take_held() is None  # nothing left for this thread's next request


def test_a_task_with_nothing_left_to_send_frees_the_place_it_took(sending, redis_client):
    window = ArrivalWindow(redis_client, login="demo", limit=5, request_deadline=5.0, patience=1.0)
    h = sending(window)
    ids = h.enqueue([PHONES[0]], phone_checked=True)
    h.store.redis.hset(keys.message(ids[0]), "valid_until", "1")  # expired before it could go
    h.sender.run(ids)
    assert h.client.calls == [] and h.states(ids) == [State.FAILED]
    assert redis_client.zcard(window.key) == 0 and window._take_held() is None


def test_a_window_redis_cannot_reach_defers_the_batch_unmarked_without_spending_its_budget(sending, redis_client):
    unreachable = redis.Redis(host="127.0.0.1", port=9, **FAIL_FAST)  # the worker's; nothing listens there
    window = ArrivalWindow(unreachable, login="demo", limit=5, request_deadline=5.0, patience=1.0)
    h = sending(window)
    ids = h.enqueue()
    h.sender.run(ids)
    records = h.store.get_many(ids)
    assert h.client.calls == [] and [m.state for m in records] == [State.DEFERRED] * 3
    assert [m.attempts for m in records] == [0, 0, 0] and marked(redis_client, ids) == [False] * 3


def slowed_claim(h: Harness, moved: list[float], *, then: Callable[[], None] = lambda: None) -> None:
    claim = h.store.claim_to_send

    def slow_claim(*args, **kwargs):
        taken = claim(*args, **kwargs)
        moved[0] += HELD_FRESH + 0.5  # the claim waited for Redis
        then()
        return taken

    h.store.claim_to_send = slow_claim  # type: ignore[method-assign]


def test_a_claim_that_took_long_after_the_place_was_taken_sends_on_its_place_renewed(sending, redis_client):
    moved = [0.0]
    now = lambda: time.monotonic() + moved[0]  # noqa: E731 - the window's clock, moved on by the slow claim
    window = ArrivalWindow(redis_client, login="demo", limit=5, request_deadline=5.0, patience=1.0, clock=now)
    h = sending(window)
    slowed_claim(h, moved)
    ids = h.enqueue([PHONES[0]], phone_checked=True)
    h.sender.run(ids)
    assert h.states(ids) == [State.SENT] and len(h.client.calls) == 1
    [write_by] = h.client.write_bys
    assert write_by is not None and write_by > now() + 0.5  # good for a request written now, not long ago
    assert redis_client.zcard(window.key) == 1  # the same place: it counted all along


def test_a_stale_place_gone_with_no_room_left_defers_the_marked_batch_without_spending_its_budget(
    sending, redis_client
):
    moved = [0.0]
    window = ArrivalWindow(redis_client, login="demo", limit=1, request_deadline=5.0, patience=1.0,
                           clock=lambda: time.monotonic() + moved[0])  # fmt: skip
    h = sending(window, lightsms_retry_window=0.0)
    other = ArrivalWindow(redis_client, login="demo", limit=1, request_deadline=5.0, patience=0.0)

    def place_lost_and_taken() -> None:
        redis_client.delete(window.key)  # gone (a Redis restart, say), and another process took the room
        other.enter("send.php", patience=0)

    slowed_claim(h, moved, then=place_lost_and_taken)
    ids = h.enqueue([PHONES[0]], phone_checked=True)
    h.sender.run(ids)
    [m] = h.store.get_many(ids)
    assert h.client.calls == [[PHONES[0]]] and h.client.write_bys == []  # the hook refused before any write
    assert m.state == State.DEFERRED and m.attempts == 0 and marked(redis_client, ids) == [False]


def evalsha_calls(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def test_a_one_call_send_takes_its_place_with_the_claim_and_ends_it_with_the_outcome(sending, redis_client):
    """Two script calls for a message sent: the claim (its slot, mark and place) and the outcome's
    moves (which end the place). A place of its own would be two calls more on every send."""
    window = ArrivalWindow(redis_client, login="demo", limit=5, request_deadline=5.0, patience=1.0)
    h = sending(window)
    ids = h.enqueue([PHONES[0]], phone_checked=True)
    before = evalsha_calls(redis_client)
    h.sender.run(ids)
    assert h.states(ids) == [State.SENT] and evalsha_calls(redis_client) - before == 2
    [ends] = ends_in(redis_client, window.key)
    assert -1.0 < ends <= 0  # ended, not left to its bound


def test_a_place_whose_request_was_refused_ends_before_the_wait_for_the_next_attempt(sending, redis_client):
    window = ArrivalWindow(redis_client, login="demo", limit=5, request_deadline=5.0, patience=1.0)
    answers = iter([ThrottledError("429", code=None), None])

    def answer(phones):
        refusal = next(answers)
        if refusal is not None:
            raise refusal
        return [accepted(p) for p in phones]

    h = Harness(redis_client, answer, window=window, lightsms_retry_window=5.0)
    seen: list[list[float]] = []

    def waited(_: float) -> None:
        seen.append(ends_in(redis_client, window.key))

    h.sender.sleep = waited
    ids = h.enqueue([PHONES[0]], phone_checked=True)
    h.sender.run(ids)
    assert h.states(ids) == [State.SENT] and len(h.client.calls) == 2
    [[refused]] = seen[-1:]  # the 429's place, while waiting: ended at its reply, not held to its bound
    assert -1.0 < refused <= 0
    ends = ends_in(redis_client, window.key)
    assert len(ends) == 2 and max(ends) <= 0  # both ended once all was done


def test_an_outcome_that_cannot_be_recorded_still_ends_its_place(sending, redis_client):
    window = ArrivalWindow(redis_client, login="demo", limit=5, request_deadline=5.0, patience=1.0)
    h = sending(window)
    ids = h.enqueue([PHONES[0]], phone_checked=True)

    def refused(*args, **kwargs):
        raise redis.ResponseError("OOM command not allowed")  # not a Redis outage: not retried

    h.store.apply = refused  # type: ignore[method-assign]
    with pytest.raises(redis.ResponseError):
        h.sender.run(ids)
    [ends] = ends_in(redis_client, window.key)
    assert ends <= 0  # ended, not left to hold room until its bound
