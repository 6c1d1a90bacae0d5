"""RedBeat for `celery -A worker beat`, made to ride out Redis outages, and reading REDIS_URL from our settings.

Why a subclass: celery-redbeat 2.4.2 lets redis errors escape wherever it touches Redis, and Celery's beat loop
(`Service.start`) ends the process on any exception from `tick()`:

- `setup_schedule()` runs inside the scheduler's constructor, before beat's loop: Redis down at start-up -> exit;
- its `beat_init` handler acquires the lock; Celery logs and swallows the handler's error, leaving `lock` None,
  and the next `tick()` dies on `None.extend` (redbeat#285; older versions scheduled without the lock, #208);
- `tick()` extends the lock and reads the due entries: a restart of a few seconds -> ConnectionError -> exit;
  a lock that vanished with Redis's data or was taken by another beat -> LockNotOwnedError -> exit;
- `maybe_due()` logs a traceback for every entry whose bookkeeping write fails;
- `close()` asks Redis whether it owns the lock, so shutting down during an outage ends in a traceback.
(Its `sync()` is the base no-op, so beat's periodic sync never touches Redis.)

Here every Redis (or broker) connection error ends the current tick instead: one warning line when an outage
starts, one line when it ends, and retries with exponential backoff in between. The lock is claimed at the start
of every tick by one Lua script (take it if absent, extend it if it is ours, else stand by), so losing it,
getting it back after Redis lost it, and waiting as the standby beat are all the same step; only a beat whose
claim succeeded in this tick schedules. After an outage or a fresh claim the static entries are installed again,
since Redis may have come back empty.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import redis
from celery.beat import Scheduler
from celery.signals import beat_init
from celery.utils.log import get_logger
from kombu.exceptions import OperationalError
from redbeat import schedulers as redbeat
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from core.settings import get_settings

__all__ = ["ResilientRedBeatScheduler", "redis_url"]

logger = get_logger("celery.beat")

# Errors that mean "Redis (or the broker) is not answering right now", not "this is a bug".
# BusyLoadingError (Redis still loading its AOF) and sentinel's MasterNotFoundError are ConnectionErrors.
_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,  # a replica being promoted
    OperationalError,  # kombu's wrapper for broker connection errors
    OSError,
)

# KEYS[1] the lock; ARGV[1] our token; ARGV[2] the lock timeout in ms.
# 1: taken (it was free), 2: extended (it was ours), 0: another beat holds it.
_CLAIM_SCRIPT = """
local holder = redis.call('get', KEYS[1])
if not holder then
    redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
if holder == ARGV[1] then
    redis.call('pexpire', KEYS[1], ARGV[2])
    return 2
end
return 0
"""
_RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""
_TAKEN, _EXTENDED = 1, 2


def _revealed(value: Any) -> str:
    # REDIS_URL is becoming a pydantic SecretStr; read it whether it is one yet or not.
    return str(value.get_secret_value() if hasattr(value, "get_secret_value") else value)


def redis_url() -> str:
    """REDIS_URL, revealed: only for RedBeat's client. Never put it in app.conf (see _RedBeatConfig)."""
    return _revealed(get_settings().redis_url)


def _sentinel_options() -> dict[str, Any]:
    """RedBeat's own names for REDIS_SENTINELS and friends; {} for a plain Redis."""
    settings = get_settings()
    if not settings.sentinels:
        return {}
    store = urlsplit(settings.store_url)
    options: dict[str, Any] = {"sentinels": settings.sentinels, "service_name": settings.redis_sentinel_master,
                               "password": store.password, "db": int(store.path.strip("/") or 0)}  # fmt: skip
    if settings.redis_sentinel_password:
        options["sentinel_kwargs"] = {"password": settings.redis_sentinel_password.get_secret_value()}
    return options


def _is_outage(exc: BaseException) -> bool:
    """Whether ``exc``, or what it wraps (Celery's SchedulingError, kombu's errors), is a connection error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, _OUTAGE_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class _RedBeatConfig(redbeat.RedBeatConfig):  # type: ignore[misc]
    """RedBeat's settings, with the Redis URL from our settings instead of app.conf.

    `celery inspect conf` and Flower's config view print app.conf, masking only keys that look secret
    (API|TOKEN|KEY|SECRET|PASS|SIGNATURE|DATABASE) and broker_url: a `redbeat_redis_url` there shows its password.
    """

    def either_or(self, name: str, default: Any = None) -> Any:
        settings = get_settings()
        if name == "redbeat_redis_url":
            # RedBeat finds the master through the sentinels when the URL says redis-sentinel.
            return "redis-sentinel://" if settings.sentinels else redis_url()
        value = super().either_or(name, default)
        if name == "redbeat_redis_options" and super().is_key_in_conf(name):
            # redis-py retries each command 10 times: against a Redis that stopped answering (5 s socket
            # timeouts) one command would take about a minute. tick() does the retrying here; redis-py retries
            # once, for a pooled connection that a restart left broken.
            value = {"retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 1), **value, **_sentinel_options()}
        return value

    def is_key_in_conf(self, name: str) -> bool | None:
        # Otherwise RedBeat warns that it falls back to broker_url, which it does not here.
        return True if name == "redbeat_redis_url" else super().is_key_in_conf(name)


class ResilientRedBeatScheduler(redbeat.RedBeatScheduler):  # type: ignore[misc]
    """RedBeatScheduler that survives Redis outages and re-claims its lock properly (module docstring)."""

    #: Seconds to wait after a failed attempt: doubled after each further failure, up to retry_max. Kept short
    #: so that scheduling resumes within about 2 s of Redis coming back; a refused connection costs nothing.
    retry_initial = 0.5
    retry_max = 2.0

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        if not isinstance(getattr(app, "redbeat_conf", None), _RedBeatConfig):
            app.redbeat_conf = _RedBeatConfig(app)
            app.redbeat_redis = None  # a client built from another URL must not be reused
        # The lock's value names its holder (host:pid) for whoever looks at it; it stays the same for the
        # life of this process, so a claim whose reply was lost is recognised as ours by the next one.
        self._token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        self._holding: bool | None = None  # None: not claimed yet
        self._claimed_at = 0.0  # time.monotonic() of the last successful claim
        self._setup_pending = True
        self._outage_since: float | None = None
        self._retry_delay = self.retry_initial
        super().__init__(app, *args, **kwargs)

    # -- schedule --------------------------------------------------------------------------------

    def setup_schedule(self) -> None:
        # Called by Scheduler.__init__, before beat's loop: an error here would end the process.
        try:
            self._install_entries()
        except Exception as exc:
            if not _is_outage(exc):
                raise
            self._on_outage(exc)  # tick() installs them once Redis answers

    def _install_entries(self) -> None:
        super().setup_schedule()
        self._setup_pending = False

    def tick(self, min: Any = min, **kwargs: Any) -> float:
        try:
            if self.lock_key and not self._claim():
                interval = float(self.max_interval)  # standing by: another beat holds the lock
            else:
                if self._setup_pending:
                    self._install_entries()
                interval = self._send_due(min)
        except Exception as exc:
            if not _is_outage(exc):
                raise
            return self._on_outage(exc)
        self._on_recovered()
        return interval

    def _send_due(self, min: Any) -> float:
        # RedBeat's tick() without its lock.extend(); _claim() did that.
        due_kwargs = self._maybe_due_kwargs  # may wait for the broker on first use (maybe_due checks the claim)
        remaining_times = []
        try:
            for entry in self.schedule.values():
                next_time_to_run = self.maybe_due(entry, **due_kwargs)
                if next_time_to_run:
                    remaining_times.append(next_time_to_run)
        except RuntimeError:
            logger.debug("beat: RuntimeError", exc_info=True)
        return float(min([*remaining_times, self.max_interval]))

    def maybe_due(self, entry: Any, **kwargs: Any) -> Any:
        # RedBeat's, except that connection errors reach tick() (one line per outage, not a traceback per
        # entry), and nothing is sent on a claim that may have expired meanwhile (a long stall on the broker).
        is_due, next_time_to_run = entry.is_due()
        if is_due:
            if self.lock_key and time.monotonic() - self._claimed_at > self.lock_timeout / 2:
                return None  # leave it due: the next tick claims again first
            logger.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
            try:
                result = self.apply_async(entry, **kwargs)
            except Exception as exc:
                if _is_outage(exc):
                    raise
                logger.exception("Scheduler: Message Error: %s", exc)
            else:
                logger.debug("Scheduler: %s sent. id->%s", entry.task, getattr(result, "id", None))
        return next_time_to_run

    # -- the lock --------------------------------------------------------------------------------

    def _claim(self) -> bool:
        """Take the lock if it is free, extend it if it is ours; True if this beat may schedule now."""
        client = redbeat.get_redis(self.app)
        result = client.eval(_CLAIM_SCRIPT, 1, self.lock_key, self._token, int(self.lock_timeout * 1000))
        held = result in (_TAKEN, _EXTENDED)
        if held:
            self._claimed_at = time.monotonic()
        if result == _TAKEN:
            # Also when we held it before: the key vanished (Redis came back without it, or it expired).
            # Redis may have lost the schedule with it: install the static entries again.
            self._setup_pending = True
            logger.info("beat: Acquired lock %s", self.lock_key)
        elif not held and self._holding is not False:
            holder = client.get(self.lock_key)
            logger.warning("beat: Lock %s is held by %s; standing by", self.lock_key, holder)
        self._holding = held
        return held

    def close(self) -> None:
        # RedBeat's close() asks Redis whether it owns the lock, and the error ends beat's shutdown with a
        # traceback during an outage. Called twice on SIGTERM (signal handler, then Service.start's finally).
        if self.lock_key and self._holding:
            self._holding = False
            try:
                redbeat.get_redis(self.app).eval(_RELEASE_SCRIPT, 1, self.lock_key, self._token)
                logger.info("beat: Released lock")
            except Exception as exc:
                if not _is_outage(exc):
                    raise
                logger.warning("beat: Could not release the lock (%s); it expires in %ss", exc, self.lock_timeout)
        Scheduler.close(self)  # skip RedBeatScheduler.close

    # -- outages ---------------------------------------------------------------------------------

    def _on_outage(self, exc: BaseException) -> float:
        self._setup_pending = True  # Redis may come back empty
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self._retry_delay = self.retry_initial
            logger.warning(
                "beat: Redis unreachable (%s: %s); not scheduling, retrying until it is back",
                type(exc).__name__,
                exc,
            )
        else:
            self._retry_delay = min(self._retry_delay * 2, self.retry_max)
            logger.debug("beat: Redis still unreachable (%s); retrying in %.1fs", exc, self._retry_delay)
        return self._retry_delay

    def _on_recovered(self) -> None:
        if self._outage_since is not None:
            logger.warning("beat: Redis reachable again after %.0fs", time.monotonic() - self._outage_since)
            self._outage_since = None
            self._retry_delay = self.retry_initial


# RedBeat acquires its lock in a beat_init handler: it blocks, and Celery swallows its errors (see above).
# This scheduler claims the lock in tick(); RedBeat's handler still serves any other RedBeat scheduler.
beat_init.disconnect(redbeat.acquire_distributed_beat_lock)


@beat_init.connect
def _redbeat_lock_unless_resilient(sender: Any = None, **kwargs: Any) -> None:
    if not isinstance(sender.scheduler, ResilientRedBeatScheduler):
        redbeat.acquire_distributed_beat_lock(sender=sender, **kwargs)
