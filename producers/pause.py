"""The account circuit: an account-level failure pauses sending for every worker on every host.

A pause is a key with a TTL: it ends by itself, or earlier when a probe shows LightSMS can take
messages again. Pauses that follow each other closely grow longer (up to MAX_PAUSE), so an account
that stays broken is tried less and less often instead of every few seconds forever.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import redis

from . import keys

FUNDS_CODES = frozenset({32, 35})
MAX_PAUSE = 3600.0
# A strike is forgotten after this long without another pause.
STRIKE_MEMORY = 2 * MAX_PAUSE


@dataclass(frozen=True, slots=True)
class Pause:
    reason: str
    code: int | None
    until: float

    @property
    def for_funds(self) -> bool:
        return self.code in FUNDS_CODES


class AccountCircuit:
    def __init__(self, client: redis.Redis, *, login: str) -> None:
        self.redis = client
        self.key = keys.pause(login)
        self.strikes_key = keys.pause_strikes(login)
        self.price_key = keys.price(login)

    def pause(self, *, reason: str, code: int | None, seconds: float) -> Pause:
        """Pause everyone, unless a pause is on already (several workers see the same failure)."""
        current = self.current()
        if current is not None:
            return current
        strikes = int(self.redis.get(self.strikes_key) or 0)
        length = min(MAX_PAUSE, seconds * 2**strikes)
        until = time.time() + length
        body = json.dumps({"reason": reason, "code": code, "until": until})
        if self.redis.set(self.key, body, px=max(1, int(length * 1000)), nx=True):
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(self.strikes_key)
            pipe.expire(self.strikes_key, int(STRIKE_MEMORY + length))
            pipe.execute()
            return Pause(reason, code, until)
        return self.current() or Pause(reason, code, until)

    def current(self) -> Pause | None:
        raw = self.redis.get(self.key)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return Pause(str(data["reason"]), data.get("code"), float(data["until"]))
        except (ValueError, KeyError, TypeError):  # written by hand: still a pause
            return Pause("paused (unreadable pause record)", None, time.time() + 60)

    def resume(self) -> None:
        self.redis.delete(self.key)

    # -- funds ---------------------------------------------------------------------------------
    def record_price(self, price_per_part: Decimal) -> None:
        self.redis.set(self.price_key, str(price_per_part))

    def price(self) -> Decimal | None:
        raw = self.redis.get(self.price_key)
        if raw is None:
            return None
        try:
            return Decimal(raw.decode() if isinstance(raw, bytes) else str(raw))
        except InvalidOperation:
            return None

    def covers_one_part(self, balance: Decimal) -> bool:
        """Enough money for one part at the last known price (any positive balance when unknown)."""
        price = self.price()
        return balance >= price if price is not None and price > 0 else balance > 0
