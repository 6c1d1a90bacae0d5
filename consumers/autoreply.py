"""Who may get an automatic reply, and how often: shared by the keyword router and the examples.

An automatic reply goes only to a subscriber's number (digits, longer than a short code), and at most
once per number and kind of reply per period. A short code or an alphanumeric sender is a service,
not a person: answering it costs money and may start a loop with another machine.
"""

from __future__ import annotations

import hashlib

import redis

from core import keys

__all__ = ["SHORT_CODE_DIGITS", "AutoReplyGate", "can_reply", "phone_digest"]

SHORT_CODE_DIGITS = 6  # a sender of this many digits or fewer is a short code


def can_reply(sender: object) -> bool:
    """True for a sender we may answer automatically: a number of digits (a leading '+' allowed)
    longer than a short code. False for short codes, alphanumeric senders and anything else."""
    if not isinstance(sender, str):
        return False
    digits = sender.strip().removeprefix("+")
    return digits.isascii() and digits.isdigit() and len(digits) > SHORT_CODE_DIGITS


def phone_digest(phone: str) -> str:
    """sha256 of the number, hex: names a Redis key without writing the number into it."""
    return hashlib.sha256(phone.encode()).hexdigest()


class AutoReplyGate:
    """At most one automatic reply of each kind per number per period (SET NX with the period as TTL).

    The key holds the id of the event that took the slot, so that the same event delivered again is
    admitted again: its reply then reuses the first delivery's idempotency key, and the producer
    returns the message already enqueued instead of sending a second. A period of 0 admits everything.
    """

    def __init__(self, client: redis.Redis, *, period: float) -> None:
        self.redis = client
        self.period = period

    def admit(self, phone: str, kind: str, event_id: str) -> bool:
        if self.period <= 0:
            return True
        key = keys.auto_reply(f"{phone_digest(phone)}:{kind}")
        if self.redis.set(key, event_id, nx=True, px=max(1, int(self.period * 1000))):
            return True
        holder = self.redis.get(key)
        if isinstance(holder, bytes):
            holder = holder.decode()
        return holder == event_id
