"""The one place a Redis client for the store is built from settings: a plain Redis from REDIS_URL,
or the master that REDIS_SENTINELS name (redis-py's Sentinel follows a failover by itself)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from .settings import CoreSettings

__all__ = ["FAIL_FAST", "reply_text", "store_client"]

# A Redis call must never hang a sender past its lease, nor a consumer or the window for long: fail,
# and let our own retry or the sweeper act. redis-py 8 would retry each command ten times (with nested
# connect retries: minutes against a Redis that accepts and never answers); one immediate retry
# covers a pooled connection that died.
FAIL_FAST: dict[str, Any] = {"socket_timeout": 10.0, "socket_connect_timeout": 5.0, "health_check_interval": 10,
                             "retry": Retry(NoBackoff(), 1)}  # fmt: skip


def reply_text(value: object) -> str:
    """A Redis reply (a key, a field, a script's answer) as text, whichever decode_responses the client
    was built with."""
    return value.decode() if isinstance(value, bytes) else str(value)


def store_client(settings: CoreSettings, **options: Any) -> redis.Redis:
    """A client of the store; `options` go to redis-py (timeouts, retry, decode_responses ...)."""
    if not settings.sentinels:
        return redis.Redis.from_url(settings.store_url, **options)
    url = urlsplit(settings.store_url)
    sentinel_options: dict[str, Any] = {key: options[key] for key in ("socket_timeout", "socket_connect_timeout")
                                        if key in options}  # fmt: skip
    if settings.redis_sentinel_password:
        sentinel_options["password"] = settings.redis_sentinel_password.get_secret_value()
    sentinel = Sentinel(settings.sentinels, sentinel_kwargs=sentinel_options)
    return sentinel.master_for(
        settings.redis_sentinel_master,
        username=url.username or None,
        password=url.password or None,
        db=int(url.path.strip("/") or 0),
        **options,
    )
