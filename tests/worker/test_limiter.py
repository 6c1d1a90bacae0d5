"""The global limiter: three worker processes at LIGHTSMS_MAX_RPS=20 for 10 seconds, against a simulator
refusing (429) more than 20 in any second: at most 20 in any one-second window, none refused, and at
least 95% of the allowed total."""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator

import pytest

from tests.support.polling import wait_until
from tests.support.redis_server import RedisServer
from tests.support.sim_process import SimProcess
from tests.worker.stack import Stack, phones
from worker.limiter import RateLimiter

RATE = 20
SECONDS = 10


@pytest.fixture
def limited_stack(module_redis: RedisServer, sim_process: SimProcess) -> Iterator[Stack]:
    stack = Stack(module_redis, sim_process, LIGHTSMS_MAX_RPS=str(RATE))
    stack.reset()
    try:
        for name in ("a", "b", "c"):
            stack.start_worker(name)
        stack.start_beat()
        yield stack
    finally:
        stack.admin.faults(max_rps=None)  # the session's simulator: no limit for the tests after
        stack.stop()


def max_in_any_window(times: list[float], width: float) -> int:
    """The most request times inside any closed window of `width` seconds."""
    return max(bisect.bisect_right(times, t + width) - i for i, t in enumerate(times))


def test_three_workers_share_one_rate_limit(limited_stack: Stack):
    stack = limited_stack
    stack.admin.faults(max_rps=RATE)
    # One send.php call per message: more work than the limit allows in the measured time.
    for phone in phones(RATE * SECONDS * 2):
        stack.producer.send(phone, f"limited {phone}")
    wait_until(lambda: stack.admin.requests("send"), timeout=20, message="nothing was sent")
    first = stack.admin.requests("send")[0]["time"]
    wait_until(lambda: stack.admin.requests("send")[-1]["time"] >= first + SECONDS + 0.5, timeout=SECONDS + 15,
               message="sending stopped before the measured period ended")  # fmt: skip
    sends = stack.admin.requests("send")
    times = sorted(r["time"] for r in sends if r["time"] <= first + SECONDS)
    busiest = max_in_any_window(times, 1.0)
    allowed = RATE * SECONDS
    print(f"\nlimiter: {len(times)} requests in {SECONDS}s at {RATE}/s from 3 workers "
          f"({len(times) / allowed:.1%} of {allowed}); busiest 1-second window: {busiest}")  # fmt: skip
    assert busiest <= RATE
    assert [r for r in sends if r["outcome"] == "throttled"] == []
    assert len(times) >= 0.95 * allowed


def test_a_slot_further_away_than_the_caller_will_wait_is_not_reserved(module_redis: RedisServer):
    limiter = RateLimiter(module_redis.client(), login="limiter-unit", rate=1)
    assert limiter.reserve(max_wait=0) == 0.0
    assert limiter.reserve(max_wait=0.5) is None  # next slot is ~1 s away
    wait = limiter.reserve(max_wait=2.0)
    assert wait is not None and 0.5 < wait <= 1.0
    assert limiter.reserve(max_wait=1.5) is None  # the one after is ~2 s away: not reserved


def test_waits_and_full_slots_are_counted_for_the_metrics(redis_client):
    from core.stats import Stats
    from worker.limiter import RateLimiter

    slept: list[float] = []
    limiter = RateLimiter(redis_client, login="counted", rate=2, sleep=slept.append, stats=Stats(redis_client))
    assert limiter.acquire(max_wait=1.0) and limiter.acquire(max_wait=1.0)  # the second waits about 0.5 s
    assert not limiter.acquire(max_wait=0.0)  # no slot free now: the caller defers
    counters = Stats(redis_client).read()
    assert counters["limiter_waits"] == "1" and counters["limiter_full"] == "1"
    # the wait counted is Redis's; the sleep ends at the slot, counted from before the reply was read
    counted_ms = int(counters["limiter_wait_ms"])
    assert 400 <= counted_ms <= 500 and -1 < counted_ms - slept[0] * 1000 < 100


def test_with_patience_a_caller_waits_for_a_far_slot_instead_of_giving_up(redis_client):
    from core.stats import Stats

    limiter = RateLimiter(redis_client, login="patient", rate=1, stats=Stats(redis_client))
    assert limiter.wait_for_slot(max_wait=0) is None  # the slot now
    distance = limiter.wait_for_slot(max_wait=0.1, patience=0)  # the next is ~1 s away: not reserved
    assert distance is not None and 0.5 < distance <= 1.0
    assert Stats(redis_client).read()["limiter_full"] == "1"
    assert limiter.wait_for_slot(max_wait=0.1, patience=5) is None  # waited until it was near, then took it
    counters = Stats(redis_client).read()
    assert counters["limiter_full"] == "1" and counters["limiter_waits"] == "1"
    assert limiter.reserve(max_wait=0.5) is None  # that slot is taken: the next is ~1 s away again


def test_a_backlog_takes_its_place_in_line_in_one_call_and_its_caller_counts_the_wait(redis_client):
    from collections import Counter

    from core.stats import Stats

    slept: list[float] = []
    limiter = RateLimiter(redis_client, login="in-line", rate=1, sleep=slept.append, stats=Stats(redis_client))
    counts: Counter[str] = Counter()
    for _ in range(4):  # slots now, +1 s, +2 s, +3 s: each reserved at once, however far, within patience
        assert limiter.wait_for_slot(max_wait=0.1, patience=5, counts=counts) is None
    assert [round(s) for s in slept] == [1, 2, 3]
    # counted as Redis gave each wait; slept from when its reply was read: a little less
    assert counts["limiter_waits"] == 3 and -2 < counts["limiter_wait_ms"] - sum(s * 1000 for s in slept) < 50
    assert limiter.wait_for_slot(max_wait=0.1, patience=2, counts=counts) is not None  # +4 s: past patience
    assert counts["limiter_full"] == 1
    assert Stats(redis_client).read() == {}  # left to the caller, who records them with its outcome


def test_a_caller_that_wakes_late_for_its_slot_takes_another_rather_than_send_late(redis_client):
    """A late request lands in one second with those fifty slots after it: a thread that overslept
    (the GIL, a CPU) takes the next free slot instead, at most RETAKES times, and says so."""
    from collections import Counter

    from worker.limiter import LATE, RETAKES

    overslept = 0.03
    assert overslept > LATE
    oversleeping = 1

    def sleep(seconds: float) -> None:
        nonlocal oversleeping
        time.sleep(seconds + (overslept if oversleeping > 0 else 0))
        oversleeping -= 1

    interval_us = 50_000
    limiter = RateLimiter(redis_client, login="late", rate=20, sleep=sleep)  # a slot every 50 ms
    assert limiter.wait_for_slot(max_wait=0) is None  # the slot now: nothing to oversleep
    next_free = int(redis_client.get(limiter.key))
    counts: Counter[str] = Counter()
    assert limiter.wait_for_slot(max_wait=1, counts=counts) is None
    assert counts["limiter_late"] >= 1  # woke late (a loaded machine may make the next late too)
    # the slot it overslept, and one more for each slot given up (later still if it woke so late
    # that the next free slot was already past)
    assert int(redis_client.get(limiter.key)) >= next_free + (1 + counts["limiter_late"]) * interval_us

    oversleeping = RETAKES + 5  # never on time: it goes after RETAKES, not never
    counts.clear()
    assert limiter.wait_for_slot(max_wait=1, counts=counts) is None
    assert counts["limiter_late"] == RETAKES


def test_a_caller_that_wakes_late_with_no_slot_left_in_its_wait_goes_late_rather_than_defer(redis_client):
    """Behind a backlog the next free slot is at the back of the line: the request goes, late, as it
    would have, rather than the batch being deferred after it waited its turn."""
    limiter = RateLimiter(redis_client, login="late-in-line", rate=10, sleep=lambda s: time.sleep(s + 0.03))
    assert limiter.wait_for_slot(max_wait=0) is None
    next_free = int(redis_client.get(limiter.key))
    assert limiter.wait_for_slot(max_wait=0.1) is None  # overslept its slot; the next is past its wait
    assert int(redis_client.get(limiter.key)) == next_free + 100_000  # so none was taken in its place


def test_a_reply_read_late_does_not_make_the_request_late(redis_client):
    """The slot is placed by Redis's clock, not by when the thread got round to reading the reply."""
    limiter = RateLimiter(redis_client, login="slow-reply", rate=1000)
    for _ in range(5):  # replies read at once: the offset between the clocks
        limiter._reserve(1.0)
    script = limiter._script
    held_up = 0.04

    def reply_read_late(**kwargs: object) -> object:
        reply = script(**kwargs)
        time.sleep(held_up)  # the thread waited this long for the GIL, or its process for a CPU
        return reply

    limiter._script = reply_read_late  # type: ignore[assignment]
    wait, slot_at = limiter._reserve(1.0)
    answered_at = time.monotonic()
    # on time: the reply's delay is not added to the wait (less what the round trips took)
    assert slot_at < answered_at + wait - held_up / 2


def test_a_caller_that_wakes_after_its_lead_but_before_its_slot_keeps_the_slot(redis_client):
    """Woken for a slot `lead` early (to mark the batch in flight first), a thread that wakes a few ms
    into that lead can still meet its slot: it is not late, and keeps it."""
    from collections import Counter

    limiter = RateLimiter(redis_client, login="lead", rate=10, sleep=lambda s: time.sleep(s + 0.007))
    assert limiter.wait_for_slot(max_wait=0) is None
    slot = limiter.take(within=1.0)  # 100 ms away
    taken = redis_client.get(limiter.key)
    counts: Counter[str] = Counter()
    kept = limiter.keep(slot.at, until=slot.at + 1, lead=0.01, counts=counts)  # wakes ~3 ms before it
    assert kept == slot.at and counts["limiter_late"] == 0 and redis_client.get(limiter.key) == taken
