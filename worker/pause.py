"""The account circuit: an account-level failure pauses sending for every worker on every host."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis

from producers import keys


@dataclass(frozen=True, slots=True)
class Pause:
    reason: str
    code: int | None
    until: float

    @property
    def for_funds(self) -> bool:
        return self.code in (32, 35)


class AccountCircuit:
    def __init__(self, client: redis.Redis, *, login: str) -> None:
        self.redis = client
        self.key = keys.pause(login)

    def pause(self, *, reason: str, code: int | None, seconds: float) -> Pause:
        until = time.time() + seconds
        body = json.dumps({"reason": reason, "code": code, "until": until})
        self.redis.set(self.key, body, px=max(1, int(seconds * 1000)))
        return Pause(reason, code, until)

    def current(self) -> Pause | None:
        raw = self.redis.get(self.key)
        if raw is None:
            return None
        data = json.loads(raw)
        return Pause(data["reason"], data.get("code"), float(data["until"]))

    def resume(self) -> None:
        self.redis.delete(self.key)
