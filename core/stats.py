"""Counters of what happened to messages: one Redis hash, shown by `lightsms-queue stats`.

Money is counted exactly, in integer nano-units of the account currency (HINCRBY), never as a float.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal

import redis

from . import keys
from .redis_client import reply_text

COST_FIELD = "cost_nanos"
NANO = Decimal("1e-9")


class Stats:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def record(self, counts: Mapping[str, int], *, cost: Decimal = Decimal(0), parts: int = 0) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for name, count in {**counts, **amounts(cost=cost, parts=parts)}.items():
            if count:
                pipe.hincrby(keys.STATS, name, count)
        pipe.execute()

    def read(self) -> dict[str, str]:
        raw = {reply_text(k): reply_text(v) for k, v in self.redis.hgetall(keys.STATS).items()}
        nanos = raw.pop(COST_FIELD, None)
        if nanos is not None and nanos.lstrip("-").isdigit():  # one written by hand may be anything
            raw["cost"] = format(from_nanos(int(nanos)), "f")
        return dict(sorted(raw.items()))


def amounts(*, cost: Decimal, parts: int) -> dict[str, int]:
    """What requests cost, as the counters that keep it (Store.apply adds them with its moves)."""
    return {COST_FIELD: to_nanos(cost), "parts": parts}


def to_nanos(amount: Decimal) -> int:
    return int(amount.quantize(NANO, rounding=ROUND_HALF_EVEN).scaleb(9))


def from_nanos(nanos: int) -> Decimal:
    return (Decimal(nanos).scaleb(-9)).normalize() if nanos else Decimal(0)
