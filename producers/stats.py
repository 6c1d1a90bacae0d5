"""Counters of what happened to messages: one Redis hash, shown by `lightsms-queue stats`."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import redis

from . import keys


class Stats:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def record(self, counts: Mapping[str, int], *, cost: Decimal = Decimal(0), parts: int = 0) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for name, count in counts.items():
            if count:
                pipe.hincrby(keys.STATS, name, count)
        if cost:
            pipe.hincrbyfloat(keys.STATS, "cost", float(cost))
        if parts:
            pipe.hincrby(keys.STATS, "parts", parts)
        pipe.execute()

    def read(self) -> dict[str, str]:
        raw = self.redis.hgetall(keys.STATS)
        return {_text(k): _text(v) for k, v in sorted(raw.items())}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
