"""The lease keeper: a worker process renews the leases of the batches it is working on.

A lease can then be short (LIGHTSMS_LEASE_SECONDS, 30 s by default) whatever a batch takes: a worker
killed with kill -9 stops renewing, and within one lease plus a sweep its messages are queued again
(no request started) or UNKNOWN (one may have reached LightSMS). One thread per process renews every
third of a lease, each batch's messages in one script call (Store.renew_lease, begin_send.lua).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import redis

from core.store import Store

log = logging.getLogger("lightsms_queue.leases")


class LeaseKeeper:
    def __init__(self, store: Store, *, lease_seconds: float) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self.interval = lease_seconds / 3
        self._held: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failing = False

    @contextmanager
    def holding(self, lease: str, message_ids: Sequence[str]) -> Iterator[None]:
        """Keep this lease renewed while the block runs."""
        with self._lock:
            self._held[lease] = list(message_ids)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="lightsms-leases", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(lease, None)

    def renew_all(self) -> int:
        """Renew every held lease now; the number of messages renewed."""
        with self._lock:
            held = list(self._held.items())
        renewed = 0
        for lease, ids in held:
            try:
                renewed += len(self.store.renew_lease(ids, lease=lease, lease_seconds=self.lease_seconds))
                self._failing = False
            except redis.RedisError as exc:
                if not self._failing:  # one line per outage: the sweeper cannot act meanwhile either
                    log.warning("leases could not be renewed (%s); retrying", type(exc).__name__)
                    self._failing = True
        return renewed

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            with self._lock:
                if not self._held:
                    self._thread = None
                    return  # started again with the next batch
            self.renew_all()
