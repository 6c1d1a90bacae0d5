"""What every command shares: settings and connections built on first use, and the exit-code rules.

Exit codes follow click: 0 success, 1 the operation failed, 2 usage or configuration. A Redis or
LightSMS that cannot be reached is one line on stderr, never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
import redis

from core.errors import ConfigError
from core.settings import CoreSettings, Settings, load_core_settings, load_settings
from lightsms.errors import LightSmsError
from lightsms.phones import mask_phone
from producers.producer import Producer

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, *, code: int = 1) -> NoReturn:
    click.echo(f"lightsms-queue: {message}", err=True)
    sys.exit(code)


def core_settings() -> CoreSettings:
    """REDIS_URL, the broker and the message rules: what every command reads."""
    try:
        return load_core_settings()
    except ConfigError as exc:
        fail(f"configuration error: {exc}", code=2)


def settings() -> Settings:
    """The full settings, LightSMS credentials included: only for commands that call LightSMS."""
    try:
        return load_settings()
    except ConfigError as exc:
        fail(f"configuration error: {exc}", code=2)


def producer() -> Producer:
    """One Producer per command run (kept in click's context, not cached across runs)."""
    meta = click.get_current_context().meta
    if "lightsms.producer" not in meta:
        meta["lightsms.producer"] = Producer(core_settings())
    return meta["lightsms.producer"]  # type: ignore[no-any-return]


def friendly_errors(command: F) -> F:
    """One line, exit 1, for a Redis or LightSMS that cannot be reached or refuses."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            fail(f"cannot reach Redis ({type(exc).__name__}): is it running, and is REDIS_URL right?")
        except redis.RedisError as exc:
            fail(f"Redis refused: {type(exc).__name__}")
        except LightSmsError as exc:
            fail(f"LightSMS: {exc}")
        except ConfigError as exc:
            fail(f"configuration error: {exc}", code=2)

    return wrapper  # type: ignore[return-value]


def shown_phone(phone: str, show: bool) -> str:
    return phone if show else mask_phone(phone)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


json_option = click.option("--json", "as_json", is_flag=True, help="print JSON")
show_phones_option = click.option("--show-phones", is_flag=True, help="show phone numbers in full")
