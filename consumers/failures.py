"""What a consumer knows about a failing event: its retry count, the handler's name, the dead record.

The retry count travels in the message headers, so it survives a consumer restart and needs no
state of its own; the dead record on `<queue>.dead` carries the event with why it ended there.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any

RETRIES_HEADER = "x-lightsms-retries"
# A handler's error message may quote the event; the dead record keeps enough to act on, no more.
ERROR_LIMIT = 500


def retries_of(headers: Mapping[str, Any] | None) -> int:
    """How many times the event was already given back to its handler (0 for a fresh event; a
    header that cannot be read counts as 0: the worst case is a few more tries)."""
    raw = (headers or {}).get(RETRIES_HEADER, 0)
    try:
        return max(0, int(raw))
    except (TypeError, ValueError, OverflowError):  # OverflowError: Infinity, which JSON readers accept
        return 0


def handler_name(handler: Callable[..., object]) -> str:
    """`<module>.<qualname>`: the name in the dead record and the handled key. A partial is named by
    the function it wraps."""
    while isinstance(handler, functools.partial):
        handler = handler.func
    module = getattr(handler, "__module__", None) or type(handler).__module__
    qualname = getattr(handler, "__qualname__", None) or type(handler).__qualname__
    return f"{module}.{qualname}"


def describe_error(exc: BaseException) -> str:
    """`<Type>: <message>`, cut to ERROR_LIMIT characters."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= ERROR_LIMIT else text[: ERROR_LIMIT - 1] + "…"


def dead_record(
    *, event: object, error: str, handler: str, queue: str, retries: int, failed_at: float | None = None
) -> dict[str, Any]:
    """What goes on `<queue>.dead`: the event as it came (requeue puts it back), and why."""
    return {
        "event": event,
        "error": error,
        "handler": handler,
        "queue": queue,
        "retries": retries,
        "failed_at": time.time() if failed_at is None else failed_at,
    }
