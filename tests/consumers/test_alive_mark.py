"""consumers/alive_mark.py's rules (pure logic, a stand-in for the renewal call): when a consumer may
take, when it may sweep, and a renewing thread that outlives any error."""

from __future__ import annotations

import time

import pytest
import redis

from consumers.alive_mark import AliveMark
from devtools.polling import wait_until


class Renewals:
    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)


def test_fresh_after_a_renewal_and_stale_after_a_third_of_dead_after():
    mark = AliveMark(Renewals(), dead_after=0.3)
    assert not mark.fresh
    mark.renew()
    assert mark.fresh
    wait_until(lambda: not mark.fresh, timeout=2, message="stale")


def test_a_failed_renewal_is_not_fresh_and_holds_sweeps_back_for_dead_after():
    mark = AliveMark(Renewals(redis.ConnectionError("down")), dead_after=0.5)
    assert mark.steady
    with pytest.raises(redis.ConnectionError):
        mark.renew()
    assert not mark.fresh and not mark.steady
    mark.renew()
    assert mark.fresh and not mark.steady  # renewed, but others may still be behind
    wait_until(lambda: mark.steady, timeout=3, message="steady again")


def test_a_renewal_counts_from_when_it_was_sent():
    mark = AliveMark(Renewals(), dead_after=30)
    mark.renewed(time.monotonic() - 11)  # a session script whose reply took 11 s
    assert not mark.fresh


@pytest.mark.parametrize("error", [redis.ConnectionError("down"), TypeError("socket closed under it"),
                                   AttributeError("'NoneType' object has no attribute 'sendall'")])  # fmt: skip
def test_the_renewing_thread_outlives_any_error(error):
    renewals = Renewals(error, error)
    mark = AliveMark(renewals, dead_after=0.6)  # renews every 0.1 s
    mark.start()
    try:
        wait_until(lambda: renewals.calls >= 4 and mark.fresh, timeout=5, message="renewing again after the errors")
    finally:
        mark.stop()
    calls = renewals.calls
    wait_until(lambda: not mark.fresh, timeout=3, message="no renewal after stop")
    assert renewals.calls == calls


def test_start_restarts_a_thread_that_ended():
    renewals = Renewals()
    mark = AliveMark(renewals, dead_after=0.6)
    mark.start()
    mark.stop()
    mark.start()
    try:
        wait_until(lambda: renewals.calls >= 2, timeout=5, message="renewing after a second start")
    finally:
        mark.stop()
