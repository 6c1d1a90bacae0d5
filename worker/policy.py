"""The retry policy as pure functions: how long to wait, and when the budget is spent."""

from __future__ import annotations

import random
from dataclasses import dataclass

from core.settings import Settings


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    backoff_base: float
    backoff_max: float

    def backoff(self, attempt: int, *, rand: random.Random | None = None) -> float:
        """Seconds before attempt number `attempt + 1`: exponential, capped, with equal jitter."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** max(0, attempt - 1))
        return ceiling / 2 + (rand or random).uniform(0, ceiling / 2)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(settings.lightsms_max_attempts, settings.lightsms_backoff_base, settings.lightsms_backoff_max)

    def spent(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
