"""The kombu defect the worker tolerates (worker/kombu_fixes.py), as pure logic: an AttributeError
from a channel whose transport was detached is treated like a connection error, and nothing else is."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from kombu import Connection
from kombu.message import Message

from worker.kombu_fixes import tolerate_detached_transport

tolerate_detached_transport()


class DetachedChannel:
    no_ack_consumers: set[str] = set()

    def basic_ack(self, *args: Any, **kwargs: Any) -> None:
        raise AttributeError("'NoneType' object has no attribute 'hostname'")

    basic_reject = basic_ack

    def close(self) -> None:
        raise AttributeError("'NoneType' object has no attribute 'hostname'")


def test_closing_or_acking_on_a_detached_transport_is_survived() -> None:
    Connection("memory://").maybe_close_channel(DetachedChannel())
    message = Message(channel=DetachedChannel(), delivery_tag="t1")
    logger = logging.getLogger("test")
    message.ack_log_error(logger, (ConnectionError,))
    message.reject_log_error(logger, (ConnectionError,))


def test_other_errors_still_escape() -> None:
    class Broken(DetachedChannel):
        def close(self) -> None:
            raise KeyError("a bug")

    with pytest.raises(KeyError):
        Connection("memory://").maybe_close_channel(Broken())


def test_patching_twice_is_harmless() -> None:
    before = Message.ack_log_error
    tolerate_detached_transport()
    assert Message.ack_log_error is before
