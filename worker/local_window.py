"""Absolute time and LightSMS's account-local wall time, both ways (pure functions, no I/O).

incoming.php takes `from`/`to` and answers `date` as naive "YYYY-MM-DD HH:MM:SS" in the account's
timezone (lightsms-api.md 3.8). The poller keeps its cursor in UTC, and turns each window into
local strings here:

- `local_window(start, end, zone)`: `from` is the earliest local wall time of any instant in
  [start, end] and `to` the latest, so no local minute is skipped across a DST change. Across a
  spring-forward change the local times simply jump (the skipped hour has no SMS in it). Across a
  fall-back change the repeated hour makes local(end) earlier than the latest local time reached
  (and local(start) later than the earliest), so the window is widened to the wall-clock hour both
  sides of the change; what that re-reads, the poller's seen marks drop.
- `received_at(date, zone)`: LightSMS's naive `date` as ISO 8601 with the offset in force then. A
  time the fall-back hour repeats is read as its first occurrence (summer time, fold=0); a time the
  spring-forward gap skips does not exist, and is read with the offset in force before the change
  (zoneinfo's fold=0 rule: 03:30 on the change day in Vilnius reads 03:30+02:00, i.e. 04:30+03:00).
  Both are consistent and never raise; an unreadable date raises ValueError.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["LOCAL_FORMAT", "local_window", "received_at"]

LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"
_READ_FORMATS = (LOCAL_FORMAT, "%Y-%m-%d %H:%M")
# Offsets are sampled this far apart to find the changes in a window; real zones change their offset
# months apart, never twice within this.
_STEP = timedelta(hours=6)
_RESOLUTION = timedelta(microseconds=1)


def local_window(start: float, end: float, zone: ZoneInfo) -> tuple[str, str]:
    """(from, to) local strings, whole seconds, covering every instant of the UTC window
    [start, end] (unix seconds, start <= end)."""
    if end < start:
        raise ValueError("the window ends before it starts")
    first = datetime.fromtimestamp(start, UTC)
    last = datetime.fromtimestamp(end, UTC)
    earliest, latest = _wall(first, zone), _wall(last, zone)
    for change in _changes(first, last, zone):
        before, after = _wall(change - _RESOLUTION, zone), _wall(change, zone)
        # Only a change that turns the clock back (fall back) reaches beyond the ends.
        earliest, latest = min(earliest, after), max(latest, before)
    return earliest.strftime(LOCAL_FORMAT), latest.strftime(LOCAL_FORMAT)


def received_at(date: str, zone: ZoneInfo) -> str:
    """LightSMS's naive `date` in `zone` as ISO 8601 with its offset; ValueError when unreadable."""
    text = date.strip()
    for layout in _READ_FORMATS:
        try:
            naive = datetime.strptime(text, layout)
        except ValueError:
            continue
        return naive.replace(tzinfo=zone, fold=0).isoformat()
    raise ValueError("not a YYYY-MM-DD HH:MM:SS date")


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall time of an aware moment (floored to the second by strftime later)."""
    return moment.astimezone(zone).replace(tzinfo=None)


def _changes(first: datetime, last: datetime, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants in (first, last] at which the zone's offset changes."""
    found: list[datetime] = []
    low = first
    while low < last:
        high = min(low + _STEP, last)
        if low.astimezone(zone).utcoffset() != high.astimezone(zone).utcoffset():
            found.append(_first_with_offset_of(low, high, zone))
        low = high
    return found


def _first_with_offset_of(low: datetime, high: datetime, zone: ZoneInfo) -> datetime:
    """The first instant in (low, high] whose offset is high's (bisection to a microsecond)."""
    target = high.astimezone(zone).utcoffset()
    while high - low > _RESOLUTION:
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return high
