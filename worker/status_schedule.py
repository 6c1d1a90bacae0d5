"""When a sent message's delivery status is asked: pure arithmetic, no Redis, no clock of its own.

The points are seconds after sending (LIGHTSMS_STATUS_SCHEDULE, default 60, 300, 900, 3600), then
every hour after the last, until the deadline (LIGHTSMS_STATUS_DEADLINE). Points are counted from
the send, not from the last check: a poll that ran late does not push every later check back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

AFTER_THE_LAST = 3600.0  # past the schedule's last step, the status is asked hourly


def first_check(sent_at: float, schedule: Sequence[float]) -> float:
    """When a message sent at `sent_at` is first asked about."""
    return sent_at + schedule[0]


def next_check(sent_at: float, now: float, schedule: Sequence[float], *, deadline: float) -> float:
    """The first schedule point after `now`, but never later than the deadline: a message still not
    final then is due once more, at `deadline_at`, to be given up on (see `past_deadline`)."""
    elapsed = now - sent_at
    step = next((s for s in schedule if s > elapsed), None)
    if step is None:
        last = schedule[-1]
        step = last + (math.floor((elapsed - last) / AFTER_THE_LAST) + 1) * AFTER_THE_LAST
    return min(sent_at + step, deadline_at(sent_at, deadline))


def deadline_at(sent_at: float, deadline: float) -> float:
    return sent_at + deadline


def past_deadline(sent_at: float, now: float, *, deadline: float) -> bool:
    """Whether asking has ended for a message sent at `sent_at`: it stays as it is, with a note."""
    return now >= deadline_at(sent_at, deadline)
