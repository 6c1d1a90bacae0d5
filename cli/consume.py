"""`lightsms-queue consume` (run a handler) and `lightsms-queue dead-events` (what it kept failing on)."""

from __future__ import annotations

import functools
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import kombu.exceptions
import redis
from kombu import Connection

from core.contract import INBOUND_QUEUE_NAME, event_id
from core.errors import ConfigError, PayloadError
from core.events import broker_connection
from core.logs import LOG_FORMATS, configure_logging, mask_numbers
from core.redis_client import FAIL_FAST, store_client

from .context import core_settings, echo_json, fail, json_option, show_phones_option, shown_phone

F = TypeVar("F", bound=Callable[..., Any])
PHONE_FIELDS = ("sender", "phone")


def broker_errors(command: F) -> F:
    """One line, exit 1, for a broker or Redis that cannot be reached."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ConfigError as exc:
            fail(f"configuration error: {exc}", code=2)
        except (kombu.exceptions.OperationalError, redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            fail(f"cannot reach the broker or Redis ({type(exc).__name__}): is it running, and are "
                 "CELERY_BROKER_URL and REDIS_URL right?")  # fmt: skip

    return wrapper  # type: ignore[return-value]


def load_handler(target: str) -> Callable[[dict[str, Any]], object]:
    """`module:function` → the function; a usage error (exit 2) if it cannot be had."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        fail(f"name the handler as module:function, not {target!r}", code=2)
    # Like `celery -A`: the current directory's modules are importable by the console script.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        fail(f"cannot import {module_name!r}: {exc}", code=2)
    for part in attribute.split("."):
        if not hasattr(found, part):
            fail(f"{module_name!r} has no {attribute!r}", code=2)
        found = getattr(found, part)
    if not callable(found):
        fail(f"{target!r} is not callable", code=2)
    return found  # type: ignore[no-any-return]


def _connected(connection: Connection) -> Connection:
    # Fail fast at start-up: a wrong URL is one line now, not a silent retry loop.
    connection.ensure_connection(max_retries=1, interval_start=0.2, timeout=5)
    return connection


@click.command()
@click.argument("target", metavar="[MODULE:FUNCTION]", required=False)
@click.option("--queue", default=None, help="the event queue (default: the handler's, else sms.inbound)")
@click.option("--keywords", is_flag=True, help="the keyword router (STOP/START/HELP) in front of the handler")
@click.option("--max-retries", type=click.IntRange(0, 1000), default=None, help="redeliveries before .dead")
@click.option("--prefetch", type=click.IntRange(1, 1000), default=None,
              help="events held at once on RabbitMQ (a Redis consumer holds one)")
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default=None, help="default LIGHTSMS_LOG_FORMAT")
@broker_errors
def consume(target: str | None, queue: str | None, keywords: bool, max_retries: int | None,
            prefetch: int | None, log_format: str | None) -> None:  # fmt: skip
    """Run a handler over sms.inbound or sms.status events until SIGTERM or Ctrl-C."""
    from consumers.api import options_of, run

    if target is None and not keywords:
        fail("name a handler (module:function), or --keywords for the keyword router alone", code=2)
    if target is None and queue not in (None, INBOUND_QUEUE_NAME):
        # The router alone reads incoming SMS; on another queue it would ack every event unhandled.
        fail(f"--keywords alone reads {INBOUND_QUEUE_NAME}; name a handler for {queue}", code=2)
    user = load_handler(target) if target is not None else None
    handler: Callable[[dict[str, Any]], object]
    if keywords:
        from consumers.keywords import build_router  # written beside this; imported only when asked for

        handler = build_router(user)
    else:
        assert user is not None
        handler = user
    queue = queue or (options_of(user).queue if user is not None else None) or INBOUND_QUEUE_NAME
    if user is not None:
        max_retries = max_retries if max_retries is not None else options_of(user).max_retries
        prefetch = prefetch if prefetch is not None else options_of(user).prefetch
    settings = core_settings()
    configure_logging(log_format=log_format or settings.lightsms_log_format, level=logging.INFO)
    # Check both ends once before running: afterwards the consumer rides out outages by itself.
    _connected(broker_connection(settings)).release()
    store = store_client(settings, **FAIL_FAST)
    try:
        store.ping()
    finally:
        store.close()
    run(handler, queue, max_retries=max_retries, prefetch=prefetch, settings=settings)


@click.command("dead-events")
@click.argument("action", type=click.Choice(["list", "requeue", "purge"]))
@click.option("--queue", default=INBOUND_QUEUE_NAME, show_default=True, help="the event queue whose .dead to use")
@json_option
@show_phones_option
@broker_errors
def dead_events(action: str, queue: str, as_json: bool, show_phones: bool) -> None:
    """Events a handler kept failing on (<queue>.dead): list, requeue (back onto the queue), purge."""
    from consumers.dead_letters import DeadLetters

    connection = _connected(broker_connection(core_settings()))
    try:
        dead = DeadLetters(connection, queue)
        if action == "list":
            records = [_masked(record, show_phones) for record in dead.list()]
            if as_json:
                echo_json(records)
            for record in [] if as_json else records:
                click.echo(_line(record))
        elif action == "requeue":
            click.echo(f"requeued onto {queue}: {dead.requeue()}")
        else:
            click.echo(f"purged from {dead.dead.name}: {dead.purge()}")
    finally:
        connection.release()


def _masked(record: dict[str, Any], show_phones: bool) -> dict[str, Any]:
    if show_phones:
        return record
    event = record.get("event")
    # The error may quote the event (an unreadable one's first characters): numbers in it are masked too.
    masked = {k: mask_numbers(v) if k in ("error", "unreadable") and isinstance(v, str) else v
              for k, v in record.items()}  # fmt: skip
    if not isinstance(event, dict):
        return masked
    shown = {k: shown_phone(v, False) if k in PHONE_FIELDS and isinstance(v, str) else v for k, v in event.items()}
    return {**masked, "event": shown}


def _line(record: dict[str, Any]) -> str:
    if "event" not in record:
        return f"(unreadable) {record.get('unreadable', record)!r:.200}"
    try:
        eid = event_id(record["event"])
    except PayloadError:
        eid = "-"
    failed_at = record.get("failed_at")
    when = "-"
    if isinstance(failed_at, int | float):
        when = datetime.fromtimestamp(failed_at, UTC).isoformat(timespec="seconds")
    event = json.dumps(record["event"], ensure_ascii=False, default=str)
    return (f"{when}  {eid}  {record.get('handler', '-')}  retries={record.get('retries', '-')}  "
            f"{record.get('error', '')}  event={event}")  # fmt: skip
