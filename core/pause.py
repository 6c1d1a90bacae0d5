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

from lightsms.codes import FUNDS_CODES

from . import keys
from .redis_client import reply_text

MAX_PAUSE = 3600.0
MAX_UNTIL = 1e11  # unix seconds: the year 5138; a pause "until" past it was written wrong
MAX_DOUBLINGS = 16  # 2**16 times any pause length is past MAX_PAUSE already
# Past this many pauses in close succession a successful probe no longer ends a pause early: an
# account that keeps failing right after each probe (balance.php answers, send.php does not) waits
# out each, longer, pause instead of flapping every few seconds.
PROBE_STRIKES = 2
# A strike is forgotten after this long without another pause.
STRIKE_MEMORY = 2 * MAX_PAUSE
PRICE_REFRESH = 60.0


@dataclass(frozen=True, slots=True)
class Pause:
    reason: str
    code: int | None
    until: float
    strikes: int = 1
    probe: bool = False  # may a successful probe end it early? (never one an operator wrote by hand)

    @property
    def for_funds(self) -> bool:
        return self.code in FUNDS_CODES


class AccountCircuit:
    def __init__(self, client: redis.Redis, *, login: str) -> None:
        self.redis = client
        self.key = keys.pause(login)
        self.strikes_key = keys.pause_strikes(login)
        self.price_key = keys.price(login)
        self._price_written: tuple[Decimal, float] | None = None  # (price, refresh period) last written

    def pause(self, *, reason: str, code: int | None, seconds: float) -> Pause:
        """Pause everyone, unless a pause is on already (several workers see the same failure)."""
        current = self.current()
        if current is not None:
            return current
        strikes = _count(self.redis.get(self.strikes_key))
        length = min(MAX_PAUSE, seconds * 2 ** min(strikes, MAX_DOUBLINGS))
        until = time.time() + length
        pause = Pause(reason, code, until, strikes=strikes + 1, probe=strikes < PROBE_STRIKES)
        body = json.dumps({"reason": reason, "code": code, "until": until, "strikes": pause.strikes,
                           "probe": pause.probe})  # fmt: skip
        if self.redis.set(self.key, body, px=max(1, int(length * 1000)), nx=True):
            pipe = self.redis.pipeline(transaction=False)
            pipe.incr(self.strikes_key)
            pipe.expire(self.strikes_key, int(STRIKE_MEMORY + length))
            pipe.execute()
            return pause
        return self.current() or pause

    def current(self) -> Pause | None:
        raw = self.redis.get(self.key)
        return None if raw is None else self.read(raw)

    @staticmethod
    def read(raw: str | bytes) -> Pause:
        """The pause a record holds; one written by hand and unreadable still pauses."""
        try:
            data = json.loads(raw)
            code = data.get("code")
            until = float(data["until"])
            if not 0 <= until < MAX_UNTIL:  # NaN, infinity, or past any date a clock can show
                raise ValueError("until out of range")
            return Pause(str(data["reason"]), code if isinstance(code, int) else None, until,
                         strikes=_count(data.get("strikes")), probe=data.get("probe") is True)  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError):  # written by hand: still a pause
            return Pause("paused by hand (unreadable pause record)", None, time.time() + 60)

    def resume(self) -> None:
        self.redis.delete(self.key)

    # -- funds ---------------------------------------------------------------------------------
    def record_price(self, price_per_part: Decimal) -> None:
        """Kept for the funds probe. Written when it changes, and at least every PRICE_REFRESH
        seconds (one deleted by hand comes back): not one SET per send."""
        now = time.monotonic()
        if self._price_written == (price_per_part, now // PRICE_REFRESH):
            return
        self.redis.set(self.price_key, str(price_per_part))
        self._price_written = (price_per_part, now // PRICE_REFRESH)

    def price(self) -> Decimal | None:
        raw = self.redis.get(self.price_key)
        if raw is None:
            return None
        try:
            return Decimal(reply_text(raw))
        except InvalidOperation:
            return None

    def covers_one_part(self, balance: Decimal) -> bool:
        """Enough money for one part at the last known price (any positive balance when unknown)."""
        price = self.price()
        return balance >= price if price is not None and price > 0 else balance > 0


def _count(raw: object) -> int:
    try:
        return max(0, int(reply_text(raw)))
    except (TypeError, ValueError):
        return 0
