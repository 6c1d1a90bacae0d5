"""`run(handler)` and the `@handler(...)` decorator: the public way to consume events.

Handlers must be idempotent by event id (core.contract.event_id: an incoming SMS's id, or
`<message id>:<status>`). Delivery is at least once: an event the consumer held when it or its
broker went away comes again, and so does one whose handler returned just before a crash, before
the consumer recorded it as handled.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from core.contract import INBOUND_QUEUE_NAME
from core.events import broker_connection
from core.redis_client import FAIL_FAST, store_client
from core.settings import CoreSettings, load_core_settings

from .handling import Handler
from .redis_consumer import RedisEventConsumer
from .runner import EventConsumer

__all__ = ["ConsumerHandler", "handler", "options_of", "run"]



@dataclass(frozen=True)
class HandlerOptions:
    queue: str | None = None
    max_retries: int | None = None
    prefetch: int | None = None


class ConsumerHandler:
    """A function marked by @handler: still callable as itself, plus `.run()` and its options."""

    def __init__(self, function: Handler, options: HandlerOptions) -> None:
        functools.update_wrapper(self, function)
        self.function = function
        self.options = options

    def __call__(self, event: dict[str, Any]) -> object:
        return self.function(event)

    def run(self, **overrides: Any) -> None:
        """consumers.run(this handler, **overrides)."""
        run(self, **overrides)


def handler(
    *, queue: str = INBOUND_QUEUE_NAME, max_retries: int | None = None, prefetch: int | None = None
) -> Callable[[Handler], ConsumerHandler]:
    """Mark a function as the handler of `queue`; `consumers.run(fn)` and `fn.run()` use these
    options (arguments given to run win). It must be idempotent by event id.

        @consumers.handler(queue="sms.status", max_retries=5)
        def on_status(event): ...
    """
    options = HandlerOptions(queue=queue, max_retries=max_retries, prefetch=prefetch)
    return lambda function: ConsumerHandler(function, options)


def options_of(function: Callable[..., object]) -> HandlerOptions:
    return function.options if isinstance(function, ConsumerHandler) else HandlerOptions()


def run(
    handler: Handler,
    queue: str | None = None,
    *,
    max_retries: int | None = None,
    prefetch: int | None = None,
    settings: CoreSettings | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """Run `handler` over the events of `queue` until SIGTERM/SIGINT (in the main thread) or until
    `should_stop()` returns true; blocks. `queue` defaults to the decorator's, else `sms.inbound`;
    `max_retries` and `prefetch` to the decorator's, else LIGHTSMS_CONSUMER_MAX_RETRIES and
    LIGHTSMS_CONSUMER_PREFETCH.

    Each event is acked only after the handler returns. An event whose handler raises comes back
    up to max_retries times, then goes to `<queue>.dead` with the error and the handler's name.
    The handler must be idempotent by event id: delivery is at least once.
    """
    consumer = build_consumer(handler, queue, max_retries=max_retries, prefetch=prefetch,
                              settings=settings, should_stop=should_stop)  # fmt: skip
    try:
        with _stop_on_signals(consumer):
            consumer.run()
    finally:
        consumer.close()


def build_consumer(
    handler: Handler,
    queue: str | None = None,
    *,
    max_retries: int | None = None,
    prefetch: int | None = None,
    settings: CoreSettings | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> EventConsumer | RedisEventConsumer:
    """The consumer run() runs (not yet connected), for the broker's kind: for tests and for callers
    with a loop of their own (run(), stop(), close())."""
    settings = settings or load_core_settings()
    options = options_of(handler)
    connection = broker_connection(settings)
    common: dict[str, Any] = {
        "queue": queue or options.queue or INBOUND_QUEUE_NAME,
        "store": store_client(settings, **FAIL_FAST),
        "max_retries": _first(max_retries, options.max_retries, settings.lightsms_consumer_max_retries),
        "should_stop": should_stop,
    }
    if connection.transport.driver_type == "redis":
        return RedisEventConsumer(connection, handler, dead_after=settings.lightsms_consumer_dead_after, **common)
    prefetch = _first(prefetch, options.prefetch, settings.lightsms_consumer_prefetch)
    return EventConsumer(connection, handler, prefetch=prefetch, **common)


def _first(*values: int | None) -> int:
    return next(v for v in values if v is not None)


@contextlib.contextmanager
def _stop_on_signals(consumer: EventConsumer | RedisEventConsumer) -> Iterator[None]:
    """SIGTERM and SIGINT finish the event in hand and stop; signals can only be set in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda _signum, _frame: consumer.stop())
    try:
        yield
    finally:
        for sig, action in previous.items():
            signal.signal(sig, action)
