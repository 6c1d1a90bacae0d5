"""Every Redis key name the project uses, in one place."""

from __future__ import annotations

from .states import Priority

PREFIX = "sms:"
MESSAGE_PREFIX = PREFIX + "msg:"

# Sorted sets indexing messages by state; the score is a unix time whose meaning is per index.
# QUEUED has one per priority (score: when it was last given a task), so the sweeper can tell a lost
# task from a backlog queue by queue.
PRIORITIES = ("high", "normal", "bulk")
QUEUED_INDEXES = tuple(PREFIX + "idx:queued:" + priority for priority in PRIORITIES)
SENDING_INDEX = PREFIX + "idx:sending"  # when its lease runs out
DUE_INDEX = PREFIX + "idx:due"  # when it is due (SCHEDULED, DEFERRED)
DEAD_INDEX = PREFIX + "idx:dead"  # when it died
UNKNOWN_INDEX = PREFIX + "idx:unknown"  # when it became UNKNOWN
INDEXES = (*QUEUED_INDEXES, SENDING_INDEX, DUE_INDEX, DEAD_INDEX, UNKNOWN_INDEX)

OPT_OUT = PREFIX + "optout"  # set of digits-only phone numbers
STATS = PREFIX + "stats"  # hash of counters


def queued_index(priority: str) -> str:
    """The QUEUED index of a priority; an unknown priority reads normal (Priority.read)."""
    return PREFIX + "idx:queued:" + Priority.read(priority).value


def message(message_id: str) -> str:
    return MESSAGE_PREFIX + message_id


def idempotency(key: str) -> str:
    return PREFIX + "idem:" + key


def pause(login: str) -> str:
    return PREFIX + "pause:" + login


def limiter(login: str) -> str:
    return PREFIX + "limiter:" + login


def pause_strikes(login: str) -> str:
    """How many pauses came close together: each lasts longer than the one before."""
    return PREFIX + "pause-strikes:" + login


def price(login: str) -> str:
    """The last known price of one SMS part, a decimal string."""
    return PREFIX + "price:" + login
