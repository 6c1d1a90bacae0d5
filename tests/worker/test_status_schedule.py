"""The delivery-status schedule's arithmetic (worker/status_schedule.py): pure, no Redis."""

from __future__ import annotations

import pytest

from worker.status_schedule import AFTER_THE_LAST, first_check, next_check, past_deadline

SCHEDULE = (60.0, 300.0, 900.0, 3600.0)
DAY3 = 72 * 3600.0
SENT = 1_000_000.0


def test_the_first_check_is_the_first_step_after_sending():
    assert first_check(SENT, SCHEDULE) == SENT + 60
    assert first_check(SENT, (1.0, 2.0)) == SENT + 1


@pytest.mark.parametrize(
    ("elapsed", "due_after_sending"),
    [
        (0, 60),  # asked before the first point (by hand): the first point
        (60, 300),  # at a point exactly: the next one
        (61, 300),
        (299.9, 300),
        (300, 900),
        (900, 3600),
        (3599, 3600),
        (3600, 3600 + AFTER_THE_LAST),  # past the last step: hourly after it
        (3601, 7200),
        (7200, 10800),
        (5 * 3600 + 17, 6 * 3600),  # a poll that ran late keeps to the points counted from the send
    ],
)
def test_the_next_check_is_the_next_point_counted_from_the_send(elapsed, due_after_sending):
    assert next_check(SENT, SENT + elapsed, SCHEDULE, deadline=DAY3) == SENT + due_after_sending


def test_a_late_poll_skips_the_points_it_missed():
    # Polled at 1000 s (it should have been at 300 and 900): next at 3600, not 900 straight away.
    assert next_check(SENT, SENT + 1000, SCHEDULE, deadline=DAY3) == SENT + 3600


def test_no_check_is_due_after_the_deadline():
    # 71 h 30 min after sending: the next hourly point (72 h) is the deadline itself.
    assert next_check(SENT, SENT + 71.5 * 3600, SCHEDULE, deadline=DAY3) == SENT + DAY3
    # a deadline between points: due at the deadline, not at the next point
    assert next_check(SENT, SENT + 100, SCHEDULE, deadline=200) == SENT + 200
    assert next_check(SENT, SENT + 5000, SCHEDULE, deadline=DAY3) == SENT + 7200


def test_the_deadline():
    assert not past_deadline(SENT, SENT + DAY3 - 0.001, deadline=DAY3)
    assert past_deadline(SENT, SENT + DAY3, deadline=DAY3)
    assert past_deadline(SENT, SENT + DAY3 + 1, deadline=DAY3)


def test_a_one_step_schedule_is_hourly_after_its_step():
    assert next_check(SENT, SENT + 1, (1.0,), deadline=DAY3) == SENT + 1 + AFTER_THE_LAST
    assert next_check(SENT, SENT + 0.5, (1.0,), deadline=DAY3) == SENT + 1


def test_the_default_schedule_asks_about_a_never_final_message_74_times_in_three_days():
    # 60, 300, 900, 3600, then hourly up to 71 h: 4 + 70 = 74 checks, then due at the deadline (75th
    # visit, given up on); the figure shows what one stuck message costs.
    points, now = [], SENT
    while not past_deadline(SENT, now, deadline=DAY3):
        now = next_check(SENT, now, SCHEDULE, deadline=DAY3)
        points.append(now - SENT)
    assert points[:5] == [60, 300, 900, 3600, 7200]
    assert points[-2:] == [71 * 3600, DAY3]
    assert len(points) == 75
