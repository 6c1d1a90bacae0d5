"""wait_until: the polling primitive every other test relies on instead of sleeps."""

from __future__ import annotations

import itertools
import time

import pytest

from tests.support.polling import wait_until


def test_returns_the_first_truthy_value() -> None:
    calls = itertools.count(1)

    result = wait_until(lambda: [n] if (n := next(calls)) >= 3 else [], timeout=2, interval=0.001)

    assert result == [3]


def test_timeout_raises_with_the_message_and_the_last_value() -> None:
    started = time.monotonic()

    with pytest.raises(AssertionError, match=r"the answer to appear; last value: 0"):
        wait_until(lambda: 0, timeout=0.2, interval=0.01, message="the answer to appear")

    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 1.0


def test_ignored_exceptions_count_as_not_yet() -> None:
    calls = itertools.count(1)

    def flaky() -> str:
        if next(calls) < 3:
            raise ConnectionError("not listening yet")
        return "up"

    assert wait_until(flaky, timeout=2, interval=0.001, ignore=(ConnectionError,)) == "up"


def test_the_last_ignored_exception_is_reported_on_timeout() -> None:
    def never() -> bool:
        raise ConnectionError("refused")

    with pytest.raises(AssertionError, match=r"ConnectionError\('refused'\)"):
        wait_until(never, timeout=0.05, interval=0.01, ignore=(ConnectionError,))


def test_other_exceptions_propagate_at_once() -> None:
    def broken() -> bool:
        raise KeyError("bug")

    started = time.monotonic()
    with pytest.raises(KeyError):
        wait_until(broken, timeout=5, ignore=(ConnectionError,))
    assert time.monotonic() - started < 1
