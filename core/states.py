"""The message state machine (DESIGN.md, "The message and its life")."""

from __future__ import annotations

import enum


class State(enum.StrEnum):
    QUEUED = "QUEUED"
    SCHEDULED = "SCHEDULED"  # send_at in the future, waiting in the due set
    DEFERRED = "DEFERRED"  # waiting in the due set after a rate limit, a pause or a transient failure
    SENDING = "SENDING"  # claimed under a lease by one worker
    SENT = "SENT"
    PARTLY_DELIVERED = "PARTLY_DELIVERED"  # some parts delivered: still asked about until final or the deadline
    DELIVERED = "DELIVERED"
    UNDELIVERED = "UNDELIVERED"
    EXPIRED = "EXPIRED"
    FAILED = "FAILED"
    SUPPRESSED = "SUPPRESSED"
    UNKNOWN = "UNKNOWN"  # the request may have reached LightSMS and the answer was lost
    CANCELLED = "CANCELLED"
    DEAD = "DEAD"  # retry budget spent


CANCELLABLE = frozenset({State.QUEUED, State.SCHEDULED, State.DEFERRED})
# States no automatic process moves a message out of (SENT still moves on delivery reports).
FINAL = frozenset(
    {
        State.DELIVERED,
        State.UNDELIVERED,
        State.EXPIRED,
        State.FAILED,
        State.SUPPRESSED,
        State.CANCELLED,
    }
)


class Priority(enum.StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    BULK = "bulk"

    @property
    def queue(self) -> str:
        return f"sms.{self.value}"

    @classmethod
    def read(cls, value: object) -> Priority:
        """A stored or received priority: anything unknown (missing, misspelt, a foreign enqueuer's
        value) reads NORMAL. The one place this rule lives (core/lua/pop_due.lua repeats it in Lua)."""
        return next((member for member in cls if member.value == value), cls.NORMAL)


class OnUnknown(enum.StrEnum):
    HOLD = "hold"  # an ambiguous outcome stays UNKNOWN for an operator
    RESEND = "resend"  # an ambiguous outcome is sent again (may duplicate)

    @classmethod
    def read(cls, value: object) -> OnUnknown:
        """A stored value: only an explicit "resend" resends; anything else holds."""
        return cls.RESEND if value == cls.RESEND.value else cls.HOLD
