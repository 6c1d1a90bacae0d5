"""What both consumers (runner.py on RabbitMQ, redis_consumer.py on Redis) do around their events:
a stop asked for by a signal or by the caller, and one log line when the broker goes away and one
when it is back, not one per reconnect attempt (and no traceback: an outage is not a bug).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["Lifecycle"]

log = logging.getLogger("lightsms_queue.consumers")


class Lifecycle:
    def __init__(self, should_stop: Callable[[], bool] | None) -> None:
        self._should_stop = should_stop
        self._stop_requested = False
        self._outage_since: float | None = None

    @property
    def stopping(self) -> bool:
        return self._stop_requested or bool(self._should_stop and self._should_stop())

    def stop(self) -> None:
        """Safe from a signal handler: only a flag, read between events."""
        self._stop_requested = True

    def lost(self, exc: BaseException) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.warning("broker connection lost (%s); reconnecting", type(exc).__name__)

    def back(self, given_back: int) -> None:
        """Connected again; `given_back`: the events held before that went back to their queue."""
        if self._outage_since is not None:
            took = time.monotonic() - self._outage_since
            log.warning("broker connection back after %.1fs; %d held event(s) given back", took, given_back)
            self._outage_since = None
        else:
            self.gave_back(given_back)

    @staticmethod
    def gave_back(count: int) -> None:
        if count:
            log.warning("%d held event(s) given back", count)
