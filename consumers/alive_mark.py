"""A Redis-broker consumer's alive mark (core.keys.consumer_alive) and registration
(core.keys.consumers_of), renewed together by a thread, for redis_consumer.py.

Other consumers give back the held list of a registered consumer whose mark is gone. So a consumer
may only take an event while its last renewal is fresh: then the mark outlives the take by far, and
the consumer is registered (a renewal registers it again, should a sweep have removed it during an
outage). After a failed renewal the thread tries again soon, so that a Redis back from an outage
sees the mark again before other consumers sweep.
"""

from __future__ import annotations

import threading
import time

import redis

__all__ = ["AliveMark"]

RETRY_AFTER_FAILURE = 0.5  # seconds, at most


class AliveMark:
    def __init__(
        self,
        client: redis.Redis,
        *,
        alive_key: str,
        registry_key: str,
        consumer_id: str,
        dead_after: float,
        errors: tuple[type[BaseException], ...],
    ) -> None:
        self.client = client
        self.alive_key = alive_key
        self.registry_key = registry_key
        self.consumer_id = consumer_id
        self.dead_after = dead_after
        self._errors = errors
        self._renewed_at = float("-inf")
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def fresh(self) -> bool:
        """Renewed recently enough to take an event: the mark has two thirds of its life ahead."""
        return time.monotonic() - self._renewed_at < self.dead_after / 3

    def renewed(self) -> None:
        """The mark was just set by other means (the session script)."""
        self._renewed_at = time.monotonic()

    def renew(self) -> None:
        """Set the mark and register; raises when Redis cannot be reached."""
        started = time.monotonic()
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self.alive_key, "1", px=int(self.dead_after * 1000))
            pipe.sadd(self.registry_key, self.consumer_id)
            pipe.execute()
        self._renewed_at = started

    def start(self) -> None:
        if self._thread is None:
            self._stopped.clear()
            self._thread = threading.Thread(target=self._run, name="consumer-alive", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """No renewal starts after this returns (the caller then unmarks and unregisters). One under
        way on a broker that stopped answering is not waited for: it can only mark a consumer with
        nothing held alive a little longer."""
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
            except self._errors:
                wait = min(interval, RETRY_AFTER_FAILURE)  # the main loop sees the outage too
