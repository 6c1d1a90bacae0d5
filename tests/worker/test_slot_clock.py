"""Placing a slot taken on Redis's clock on the worker's own (pure logic, a fake clock)."""

from __future__ import annotations

import pytest

from worker.slot_clock import MOST_EARLIER, SlotClock

REDIS = 1_800_000_000.0  # Redis TIME when the worker's monotonic clock read 100.0
MONO = 100.0


def near(value: float) -> object:
    return pytest.approx(value, abs=1e-6)  # unix seconds as floats: a microsecond is the precision


def clock() -> SlotClock:
    return SlotClock(window=30.0, clock=lambda: 0.0)


def test_a_reply_read_late_is_placed_by_the_least_offset_seen():
    c = clock()
    # a quick call: Redis read its clock 0.1 ms before the reply was read
    assert c.place(0.0, REDIS, asked_at=MONO - 0.0002, answered_at=MONO + 0.0001) == near(MONO + 0.0001)
    # a call whose reply waited 40 ms to be read: the slot 0.5 s after Redis's clock is still there
    placed = c.place(0.5, REDIS + 10, asked_at=MONO + 10, answered_at=MONO + 10.04)
    assert placed == near(MONO + 10.5001)


def test_never_before_the_call_plus_its_wait_nor_after_the_reply_plus_its_wait():
    c = clock()
    c.place(0.0, REDIS, asked_at=MONO, answered_at=MONO + 0.0001)
    # Redis's clock stepped back 5 s: the old offset would place the slot 5 s early
    placed = c.place(0.2, REDIS + 5, asked_at=MONO + 10, answered_at=MONO + 10.003)
    assert placed == near(MONO + 10.2)  # asked_at + wait: Redis cannot have read its clock before the call
    # Redis's clock stepped forward 5 s: the new offset is the least, and the slot lands at once
    placed = c.place(0.2, REDIS + 25, asked_at=MONO + 20, answered_at=MONO + 20.001)
    assert placed == near(MONO + 20.201)


def test_the_least_offset_is_forgotten_after_two_windows():
    c = clock()
    c.place(0.0, REDIS, asked_at=MONO, answered_at=MONO)  # offset MONO - REDIS
    # every reply since reads 2 ms late (a slower path to Redis): after two windows that is the offset
    late = 0.002
    for t in range(1, 62, 5):
        placed = c.place(0.0, REDIS + t, asked_at=MONO + t - 0.003, answered_at=MONO + t + late)
    assert placed == near(MONO + 61 + late)  # the old offset, 2 ms less, is gone
    assert c.place(0.0, REDIS + 62, asked_at=MONO + 62 - 0.01, answered_at=MONO + 62 + 0.01) == near(MONO + 62 + late)


def test_a_call_retried_after_a_timeout_is_placed_no_more_than_most_earlier_before_its_reply():
    c = clock()
    c.place(0.0, REDIS, asked_at=MONO, answered_at=MONO + 0.0001)
    # Redis's clock is now 2 s behind (a failover), and the call's first attempt timed out after 10 s
    placed = c.place(0.1, REDIS + 18, asked_at=MONO + 10, answered_at=MONO + 20.001)
    assert placed == near(MONO + 20.001 + 0.1 - MOST_EARLIER)
