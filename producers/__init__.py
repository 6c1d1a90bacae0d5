"""Enqueue SMS for lightsms-queue workers: `send`, `send_many`, `get`, `cancel`.

The module-level functions use a Producer configured from the environment on first use, from the
core settings only (CoreSettings): a producer needs REDIS_URL, never the LightSMS credentials.
"""

from __future__ import annotations

import functools
from typing import Any

from core.settings import ConfigError, CoreSettings, Settings, load_core_settings, load_settings
from core.states import State
from lightsms.errors import InvalidInput

from .producer import Producer
from .validation import OptedOutError

__all__ = [
    "ConfigError",
    "CoreSettings",
    "InvalidInput",
    "OptedOutError",
    "Producer",
    "Settings",
    "State",
    "cancel",
    "default_producer",
    "get",
    "load_core_settings",
    "load_settings",
    "send",
    "send_many",
]


@functools.cache
def default_producer() -> Producer:
    return Producer()


def send(phone: str, text: str, **options: Any) -> str:
    return default_producer().send(phone, text, **options)


def send_many(phones: list[str], text: str, **options: Any) -> list[str]:
    return default_producer().send_many(phones, text, **options)


def get(message_id: str) -> dict[str, Any] | None:
    return default_producer().get(message_id)


def cancel(message_id: str) -> bool:
    return default_producer().cancel(message_id)
