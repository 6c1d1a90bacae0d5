"""Deadline-based polling: the one way tests wait for something to become true.

Tests never sleep for a fixed time to "let things settle"; they poll for the condition they
actually need, so they are as fast as the system allows and fail with a useful message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.05,
    message: str = "",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` until it returns something truthy and return that value.

    Exceptions of the types in ``ignore`` count as a falsy result (handy while a server is still
    starting). On the deadline, raise AssertionError naming ``message`` and the last value seen.
    The predicate is always called at least once, and once more at the deadline, so a condition
    that became true while we slept is not reported as a timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
        except ignore as exc:
            last: object = exc
        else:
            if result:
                return result
            last = result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            what = message or getattr(predicate, "__name__", "condition")
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last value: {last!r}")
        time.sleep(min(interval, remaining))
