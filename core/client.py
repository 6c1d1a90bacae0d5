"""The one place a LightSmsClient is built from settings (workers, the CLI's provider commands, consumers)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from lightsms.client import LightSmsClient

from .settings import Settings


def build_client(
    settings: Settings, *, pool_size: int | None = None,
    admission: Callable[[str], AbstractContextManager[object]] | None = None,
) -> LightSmsClient:  # fmt: skip
    """A client for the configured account; `pool_size`: pooled connections (the client's default if None);
    `admission`: entered around each signed request (the worker's rate limit)."""
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
        admission=admission,
        **pool,
    )
