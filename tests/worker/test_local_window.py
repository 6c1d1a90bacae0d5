"""worker/local_window.py across both of Europe/Vilnius's 2026 DST changes: pure, no I/O.

Spring forward 2026-03-29 at 01:00 UTC (03:00 EET -> 04:00 EEST); fall back 2026-10-25 at 01:00 UTC
(04:00 EEST -> 03:00 EET, the hour 03:00-04:00 happens twice).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from worker.local_window import LOCAL_FORMAT, local_window, received_at

VILNIUS = ZoneInfo("Europe/Vilnius")
SPRING = datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp()
FALL = datetime(2026, 10, 25, 1, 0, tzinfo=UTC).timestamp()


def local_text(instant: float) -> str:
    return datetime.fromtimestamp(instant, VILNIUS).strftime(LOCAL_FORMAT)


def instants(start: float, end: float) -> list[float]:
    """Every whole second of [start, end] near a change, every 20 s elsewhere, and both ends."""
    found = {start, end}
    moment = float(int(start))
    while moment <= end:
        found.add(moment)
        near = min(abs(moment - SPRING), abs(moment - FALL)) < 120
        moment += 1 if near else 20
    return sorted(t for t in found if start <= t <= end)


# (start, end) relative to the change: across it, straddling it closely, ending or starting in the
# hour the fall back repeats, and wide windows (a long-stuck cursor).
WINDOWS = [(-150, 30), (-30, 30), (-1, 1), (-3600, 3600), (-7200, -1), (0, 1800), (-120, 3599), (3500, 3700),
           (-6 * 3600, 6 * 3600), (-86400 * 3, 86400 * 2), (1, 2)]  # fmt: skip


@pytest.mark.parametrize("change", [SPRING, FALL], ids=["spring-forward", "fall-back"])
@pytest.mark.parametrize(("before", "after"), WINDOWS)
def test_window_covers_every_local_time_of_its_instants(change: float, before: int, after: int) -> None:
    start, end = change + before, change + after
    low, high = local_window(start, end, VILNIUS)
    walls = [local_text(t) for t in instants(start, end)]
    # Every local second (so every local minute) any instant of the window has is inside [from, to] ...
    assert all(low <= wall <= high for wall in walls)
    # ... and the window is no wider than that: its ends are local times some instant has.
    assert low == min(walls) and high == max(walls)


def test_spring_forward_window_just_jumps_the_missing_hour() -> None:
    assert local_window(SPRING - 150, SPRING + 30, VILNIUS) == ("2026-03-29 02:57:30", "2026-03-29 04:00:30")


def test_fall_back_window_is_widened_to_the_repeated_hour() -> None:
    # 03:57:30 EEST .. 03:00:30 EET: local(end) is before local(start); every wall time between is covered.
    assert local_window(FALL - 150, FALL + 30, VILNIUS) == ("2026-10-25 03:00:00", "2026-10-25 03:59:59")
    # Ending inside the repeated hour: the first pass through 03:xx reached 03:59:59.
    assert local_window(FALL - 7200, FALL + 600, VILNIUS) == ("2026-10-25 02:00:00", "2026-10-25 03:59:59")
    # Starting inside the second pass: its first pass is not in the window.
    assert local_window(FALL + 600, FALL + 3700, VILNIUS) == ("2026-10-25 03:10:00", "2026-10-25 04:01:40")


def test_an_ordinary_window_is_just_its_two_local_times() -> None:
    start = datetime(2026, 1, 15, 10, 0, 5, 700_000, tzinfo=UTC).timestamp()
    assert local_window(start, start + 90.9, VILNIUS) == ("2026-01-15 12:00:05", "2026-01-15 12:01:36")


def test_a_window_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError):
        local_window(SPRING, SPRING - 1, VILNIUS)


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("2026-03-29 02:59:59", "2026-03-29T02:59:59+02:00"),
        ("2026-03-29 04:00:00", "2026-03-29T04:00:00+03:00"),
        ("2026-03-29 03:30:00", "2026-03-29T03:30:00+02:00"),  # does not exist: the offset before the change
        ("2026-10-25 02:59:59", "2026-10-25T02:59:59+03:00"),
        ("2026-10-25 03:30:00", "2026-10-25T03:30:00+03:00"),  # happens twice: the first time
        ("2026-10-25 04:00:00", "2026-10-25T04:00:00+02:00"),
        ("2026-01-15 12:00", "2026-01-15T12:00:00+02:00"),
        (" 2026-07-01 00:00:00 ", "2026-07-01T00:00:00+03:00"),
    ],
)
def test_received_at_carries_the_offset_in_force(date: str, expected: str) -> None:
    assert received_at(date, VILNIUS) == expected
    assert datetime.fromisoformat(expected).astimezone(VILNIUS).strftime(LOCAL_FORMAT)[:16] in {
        date.strip()[:16], "2026-03-29 04:30"}  # fmt: skip


@pytest.mark.parametrize("date", ["", "2026-02-30 10:00:00", "yesterday", "2026-01-15T12:00:00", "2026-01-15"])
def test_an_unreadable_date_is_a_value_error(date: str) -> None:
    with pytest.raises(ValueError):
        received_at(date, VILNIUS)
