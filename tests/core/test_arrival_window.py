"""core/arrival_window.py on a real Redis (and the simulator over real HTTP): no more than the limit
of requests arrive in any second, whatever delays them between entering the window and arriving."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time

import pytest
import redis

from core.arrival_window import (
    HELD_FRESH,
    STALL,
    UNDER_WAY_SLACK,
    WIDTH_US,
    ArrivalWindow,
    WindowFullError,
    window_limit,
)
from core.redis_client import FAIL_FAST
from lightsms.client import LightSmsClient
from lightsms.errors import AmbiguousError, ConnectError, LightSmsError, NotSentError, ThrottledError
from tests.support.redis_server import RedisServer
from tests.support.sim_process import SimAdmin, SimProcess
from tests.worker.test_limiter import max_in_any_window


def window(client: redis.Redis, *, limit: int, patience: float = 0.0, deadline: float = 5.0) -> ArrivalWindow:
    return ArrivalWindow(client, login="demo", limit=limit, request_deadline=deadline, patience=patience)


def test_the_limit_is_a_whole_number_of_requests_per_second_and_at_least_one():
    assert [window_limit(rate) for rate in (0.2, 1, 1.5, 50, 50.9)] == [1, 1, 1, 50, 50]


def test_a_request_waits_while_the_limit_are_under_way_or_ended_less_than_a_second_ago(redis_client: redis.Redis):
    gate = window(redis_client, limit=2)
    first, second = gate.admitted("send.php"), gate.admitted("send.php")
    first.__enter__()
    second.__enter__()
    ran = []
    taken = "send.php not sent: the rate limit.s 2 in a second"
    with pytest.raises(WindowFullError, match=taken), gate.admitted("send.php"):
        ran.append(1)
    assert ran == [] and redis_client.zcard(gate.key) == 2  # refused before the request, nothing written

    first.__exit__(None, None, None)
    left_at = time.monotonic()
    with pytest.raises(WindowFullError):  # it ended, but less than a second ago
        gate.admitted("send.php").__enter__()

    patient = window(redis_client, limit=2, patience=3.0)
    with patient.admitted("send.php"):
        entered_after = time.monotonic() - left_at
    assert WIDTH_US / 1e6 - 0.05 <= entered_after < 2.0
    second.__exit__(None, None, None)


def test_a_request_never_left_holds_its_place_until_its_deadline_has_passed(redis_client: redis.Redis):
    gate = window(redis_client, limit=1, deadline=7.0)
    lost = gate.admitted("send.php")  # kept: a context manager collected unexited would leave
    lost.__enter__()  # its process is lost mid-request: it never leaves
    [under_way_for] = ends_in(redis_client, gate.key)
    assert 7.9 < under_way_for <= 8.0  # the deadline and a second more
    # and the key goes once all have ended (lengthened by window.lua's 30 s at once, not at each call)
    assert 9.0 < redis_client.pttl(gate.key) / 1000 <= 9.1 + 30


def replied(error: LightSmsError, status: int) -> LightSmsError:
    error.http_status = status  # as the transport reads a reply with that status
    return error


def redis_now(client: redis.Redis) -> float:
    """Redis TIME, in seconds: the window's clock."""
    seconds, micros = client.time()
    return seconds + micros / 1e6


def ends_in(client: redis.Redis, key: str) -> list[float]:
    """Each place's end (its score) less Redis's now, in seconds, soonest first."""
    now = redis_now(client)
    return [score / 1e6 - now for _, score in client.zrange(key, 0, -1, withscores=True)]


@pytest.mark.parametrize(
    ("raised", "place"),
    [(None, "ends now"), (ThrottledError("a 429 reply"), "ends now"), (ConnectError("refused"), "freed"),
     (replied(AmbiguousError("HTTP 500"), 500), "ends now"), (AmbiguousError("no reply"), "kept until its bound"),
     (replied(AmbiguousError("HTTP 504"), 504), "kept until its bound"), (KeyboardInterrupt(), "kept until its bound")],
)  # fmt: skip
def test_how_a_request_ended_decides_how_long_its_place_counts(
    redis_client: redis.Redis, raised: BaseException | None, place: str
):
    gate = window(redis_client, limit=5, deadline=4.0)
    asked = time.monotonic()
    with contextlib.suppress(type(raised) if raised else ()), gate.admitted("send.php") as write_by:
        # written within a second of asking for its place, it is covered to its deadline
        assert asked + UNDER_WAY_SLACK <= write_by <= time.monotonic() + UNDER_WAY_SLACK
        if raised:
            raise raised
    ends = ends_in(redis_client, gate.key)
    if place == "freed":
        assert ends == []
    elif place == "ends now":
        assert len(ends) == 1 and -0.5 < ends[0] <= 0
    else:
        assert len(ends) == 1 and 4.5 < ends[0] <= 5.0  # its deadline and a second more


def test_a_held_place_is_the_next_requests_and_one_never_used_is_freed(redis_client: redis.Redis):
    gate = window(redis_client, limit=5)
    gate.hold(gate.enter("send.php", patience=0))
    with gate.admitted("send.php"):
        assert redis_client.zcard(gate.key) == 1  # the held place, not a second one
    assert len(ends_in(redis_client, gate.key)) == 1

    gate.hold(gate.enter("send.php", patience=0))
    gate.release_held()  # the batch was not sent after all
    gate.release_held()  # twice is harmless
    assert len(ends_in(redis_client, gate.key)) == 1
    with gate.admitted("status.php"):  # a request after a release takes a place of its own
        assert redis_client.zcard(gate.key) == 2
    other = threading.Thread(target=lambda: gate.hold(gate.enter("send.php", patience=0)))
    other.start()
    other.join()
    with gate.admitted("send.php"):  # another thread's held place is its own
        assert redis_client.zcard(gate.key) == 4


def test_a_request_let_in_only_after_a_stalled_redis_call_is_not_sent_and_frees_its_place(redis_client: redis.Redis):
    readings = iter([100.0, 100.0, 100.0 + STALL + 0.01])  # started; asked; the reply read past both
    gate = ArrivalWindow(redis_client, login="demo", limit=1, request_deadline=5.0, patience=0.0,
                         clock=lambda: next(readings))  # fmt: skip
    ran = []
    too_long = "send.php not sent: entering the rate limit took too long"
    with pytest.raises(NotSentError, match=too_long), gate.admitted("send.php"):
        ran.append(1)
    assert ran == [] and redis_client.zcard(gate.key) == 0  # freed: it counts for nothing


def test_without_redis_a_leave_keeps_the_requests_own_outcome_and_no_request_enters(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
):
    if not redis_server.alive:
        redis_server.restart()
    gate = window(redis_server.client(**FAIL_FAST), limit=5)  # the worker's: one quick retry
    try:
        caplog.set_level(logging.WARNING, logger="lightsms_queue.limiter")
        with pytest.raises(ThrottledError), gate.admitted("send.php"):
            redis_server.stop()
            raise ThrottledError("send.php: HTTP 429")  # a reply came: its place ends now, or would
        assert "a finished request's place not freed (ConnectionError)" in caplog.text

        ran = []
        unchecked = "send.php not sent: the rate limit could not be checked"
        with pytest.raises(NotSentError, match=unchecked) as caught, gate.admitted("send.php"):
            ran.append(1)
        assert ran == [] and not isinstance(caught.value, WindowFullError)
    finally:
        redis_server.restart()


def test_requests_delayed_at_random_after_entering_never_arrive_more_than_the_limit_in_a_second(
    redis_client: redis.Redis,
):
    # Arrival anywhere between entering and leaving, as at LightSMS: a delay of up to 300 ms at a limit
    # of 5 (200 ms apart) would put 6 in a second again and again were requests counted as they entered.
    limit, threads, until = 5, 6, time.monotonic() + 3.0
    arrivals: list[float] = []
    lock = threading.Lock()
    gate = window(redis_client, limit=limit, patience=2.0)
    rng = random.Random(11)

    def hammer() -> None:
        while time.monotonic() < until:
            try:
                with gate.admitted("send.php"):
                    time.sleep(rng.uniform(0, 0.3))
                    with lock:
                        arrivals.append(time.monotonic())
                    time.sleep(rng.uniform(0, 0.05))
            except WindowFullError:
                continue

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=15)
    arrivals.sort()
    assert max_in_any_window(arrivals, 1.0) <= limit
    assert len(arrivals) >= 2 * limit  # it kept sending: about 4 a second with these delays


def test_concurrent_clients_through_the_window_get_no_429_from_a_server_enforcing_the_limit(
    redis_client: redis.Redis, sim_process: SimProcess, sim_admin: SimAdmin
):
    # No limiter slots at all: the window alone holds six threads hammering send.php to the limit.
    limit = 5
    sim_admin.faults(max_rps=limit)
    gate = window(redis_client, limit=limit, patience=2.0)
    refused: list[BaseException] = []
    until = time.monotonic() + 2.5

    def hammer(n: int) -> None:
        with LightSmsClient("demo", "demo-key", base_url=sim_process.base_url, timeout=(1.0, 3.0),
                            admission=gate.admitted) as client:  # fmt: skip
            while time.monotonic() < until:
                try:
                    client.send([f"3706100{n:04d}"], "window", sender="LightSMS")
                except WindowFullError:
                    continue
                except NotSentError as exc:  # a 429: what the window is there to prevent
                    refused.append(exc)

    workers = [threading.Thread(target=hammer, args=(n,)) for n in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=15)
    sends = sim_admin.requests("send")
    times = sorted(r["time"] for r in sends)
    assert refused == [] and all(r["outcome"] != "throttled" for r in sends)
    assert max_in_any_window(times, 1.0) <= limit
    assert len(times) >= 2 * limit
    assert sim_admin.requests("timestamp")  # the clock is read outside the window: it is not counted


def test_holding_a_second_place_frees_the_first(redis_client: redis.Redis):
    gate = window(redis_client, limit=5)
    first = gate.enter("send.php", patience=0)
    gate.hold(first)
    gate.hold(gate.enter("send.php", patience=0))
    assert redis_client.zcard(gate.key) == 1 and redis_client.zscore(gate.key, first.member) is None


def test_a_held_place_gone_stale_is_renewed_not_given_up(redis_client: redis.Redis):
    moved = [0.0]
    gate = ArrivalWindow(redis_client, login="demo", limit=2, request_deadline=5.0, patience=5.0,
                         clock=lambda: time.monotonic() + moved[0])  # fmt: skip
    stale = gate.enter("send.php", patience=0)
    gate.hold(stale)
    moved[0] = HELD_FRESH + 0.1  # the claim after it waited for Redis
    with gate.admitted("send.php") as write_by:
        assert redis_client.zrange(gate.key, 0, -1) == [stale.member]  # the same place: counted all along
        assert write_by > stale.asked_at + UNDER_WAY_SLACK + HELD_FRESH  # good for a request written now
        [under_way] = ends_in(redis_client, gate.key)
        assert 5.5 < under_way <= 6.0  # its bound counted from the renewal


def test_with_every_place_under_way_a_wait_for_room_asks_again_after_a_second_not_their_bound(
    redis_client: redis.Redis,
):
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        redis_client.delete(gate.key)  # the request under way got its reply long ago, say

    gate = ArrivalWindow(redis_client, login="demo", limit=1, request_deadline=13.0, patience=20.0, sleep=sleep)
    gate.enter("send.php", patience=0)  # under way, its bound 14 s away
    gate.enter("send.php", patience=20.0)
    assert len(slept) == 1 and 0.9 < slept[0] <= WIDTH_US / 1e6


def test_the_same_place_asked_again_after_a_lost_reply_is_given_not_refused(redis_client: redis.Redis):
    gate = window(redis_client, limit=1)
    place = gate.enter("send.php", patience=0)
    args = [1, place.member, 6_000_000, WIDTH_US]
    assert int(gate._enter(keys=[gate.key], args=args)) == 0  # redis-py's one retry, the window full by then
    assert int(gate._enter(keys=[gate.key], args=[1, "another", 6_000_000, WIDTH_US])) > 0
    assert redis_client.zcard(gate.key) == 1


def test_places_kept_in_a_nested_keeping_are_ended_by_the_outer_one(redis_client: redis.Redis):
    gate = window(redis_client, limit=5, deadline=7.0)
    with gate.ends_kept():
        with gate.ends_kept(), gate.admitted("send.php"):
            pass
        ended = gate.take_ended()  # the inner one left it for the outer one's call
    assert ended is not None and len(ended.members) == 1
