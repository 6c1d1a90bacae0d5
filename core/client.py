"""The one place a LightSmsClient is built from settings (workers, the CLI's provider commands, consumers).

Every client built here holds the rate limit's arrival window (core/arrival_window.py): LightSMS
counts every signed request, whichever process makes it.
"""

from __future__ import annotations

from typing import Any

import redis

from lightsms.client import LightSmsClient

from .arrival_window import ArrivalWindow, window_limit
from .redis_client import FAIL_FAST, store_client
from .settings import Settings


def arrival_window(settings: Settings, client: redis.Redis | None = None) -> ArrivalWindow:
    """The account's arrival window, on `client` (the store's), or on a client of its own."""
    return ArrivalWindow(
        client or store_client(settings, **FAIL_FAST), login=settings.lightsms_login,
        limit=window_limit(settings.lightsms_max_rps), request_deadline=settings.request_deadline,
        patience=settings.lightsms_limiter_max_wait,
    )  # fmt: skip


def build_client(
    settings: Settings, *, pool_size: int | None = None, window: ArrivalWindow | None = None
) -> LightSmsClient:
    """A client for the configured account; `pool_size`: pooled connections (the client's default if None);
    `window`: the arrival window its requests go through (one of its own if None)."""
    pool: dict[str, Any] = {} if pool_size is None else {"pool_size": pool_size}
    return LightSmsClient(
        settings.lightsms_login,
        settings.lightsms_api_key.get_secret_value(),
        base_url=settings.lightsms_base_url,
        timeout=(settings.lightsms_connect_timeout, settings.lightsms_read_timeout),
        deadline=settings.request_deadline,
        default_region=None,  # stored phones are international already: a region would re-read them
        batch_limit=settings.lightsms_batch_size,
        max_parts=settings.lightsms_max_parts,
        admission=(window or arrival_window(settings)).admitted,
        **pool,
    )
