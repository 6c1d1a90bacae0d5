"""A Redis-broker consumer's renewal in the registry (core.keys.consumers_of), kept up by a thread,
for redis_consumer.py.

Other consumers give back the held list of a consumer not renewed for dead_after. So a consumer may
only take an event while its last renewal is fresh: then it stays alive to the others well past
the take. After a failed renewal the thread tries again soon, so that a Redis back from an outage
sees the consumer alive before others sweep, and the consumer itself does not sweep others until
its own renewals have gone through for dead_after (they may be as far behind as it was).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["AliveMark"]

log = logging.getLogger("lightsms_queue.consumers")

RETRY_AFTER_FAILURE = 0.5  # seconds, at most


class AliveMark:
    def __init__(self, renew: Callable[[], object], *, dead_after: float) -> None:
        self._renew = renew  # registers the consumer as alive now; raises when Redis cannot be reached
        self.dead_after = dead_after
        self._renewed_at = float("-inf")
        self._failed_at = float("-inf")
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def fresh(self) -> bool:
        """Renewed recently enough to take an event: alive to the others for two thirds of dead_after yet."""
        return time.monotonic() - self._renewed_at < self.dead_after / 3

    @property
    def steady(self) -> bool:
        """No renewal failed for dead_after: others back from the same outage have renewed by now."""
        return time.monotonic() - self._failed_at >= self.dead_after

    def renewed(self, at: float) -> None:
        """Renewed by other means (the session script) sent at monotonic time `at`."""
        self._renewed_at = max(self._renewed_at, at)

    def renew(self) -> None:
        sent = time.monotonic()  # the earliest the renewal took effect: never fresher than it is
        try:
            self._renew()
        except BaseException:
            self._failed_at = time.monotonic()
            raise
        self.renewed(sent)

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopped.clear()
            self._thread = threading.Thread(target=self._run, name="consumer-alive", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """No renewal starts after this returns (the caller then gives back and unregisters). One
        under way on a broker that stopped answering is not waited for: it can only keep a consumer
        that holds nothing registered a little longer."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None

    def _run(self) -> None:
        interval = self.dead_after / 6
        wait = interval
        while not self._stopped.wait(wait):
            try:
                self.renew()
                wait = interval
            except Exception as exc:  # an outage, or a socket the main loop just closed: try again soon
                log.debug("renewal failed (%s)", type(exc).__name__)
                wait = min(interval, RETRY_AFTER_FAILURE)
