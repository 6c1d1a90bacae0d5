"""A lock in Redis held by the one process running a poller at a time.

SET NX PX with a random token: the lock expires by itself if its holder dies, and renew and release
(core/lua/lock_renew.lua, lock_release.lua) act only while the token is still the holder's, so a
holder whose time ran out never extends or deletes the lock another process took since. Whatever
the holder writes last must check the token in the same script (see inbound_cursor.lua).
"""

from __future__ import annotations

import logging
import secrets

import redis

from core.store import load_script

__all__ = ["PollLock"]

log = logging.getLogger("lightsms_queue.poll_lock")


class PollLock:
    """One attempt at holding `key`: a fresh token per instance."""

    def __init__(self, client: redis.Redis, key: str, *, ttl: float) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = max(1, int(ttl * 1000))
        self.token = secrets.token_hex(16)
        self._renew = client.register_script(load_script("lock_renew.lua"))
        self._release = client.register_script(load_script("lock_release.lua"))

    def acquire(self) -> bool:
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        """Another full TTL from now; False when the lock is no longer ours (stop writing)."""
        return bool(self._renew(keys=[self.key], args=[self.token, self.ttl_ms]))

    def release(self) -> bool:
        """Give the lock up if it is still ours. A Redis that fails now is not worth raising over (and
        must not hide the poll's own error): the lock runs out by itself."""
        try:
            return bool(self._release(keys=[self.key], args=[self.token]))
        except redis.RedisError as exc:
            log.warning("could not release %s (%s): it expires by itself", self.key, type(exc).__name__)
            return False
