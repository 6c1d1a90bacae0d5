"""The two moments a Redis outage can strand an event (consumers/recovery.py), made to happen on
purpose: the ack fails after the handler returned, and the unacked record fails after the pop."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis
from kombu.message import Message
from kombu.transport import redis as kombu_redis

from devtools.polling import wait_until
from tests.consumers.conftest import running, settled, sms


def _fail_once(monkeypatch: pytest.MonkeyPatch, owner: type, name: str) -> list[int]:
    """Make owner.name raise a connection error the first time it is called, as a Redis going away would."""
    original = getattr(owner, name)
    failures: list[int] = []

    def flaky(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not failures:
            failures.append(1)
            raise redis.ConnectionError("Connection closed by server.")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, flaky)
    return failures


def test_an_event_whose_ack_failed_is_given_back_on_reconnect_and_not_handled_again(
    settings, redis_client, publish, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger="lightsms_queue.consumers")
    failures = _fail_once(monkeypatch, Message, "ack")
    seen: list[dict[str, Any]] = []
    publish(sms(1))
    with running(seen.append, settings):  # type: ignore[arg-type]
        # Without the restore it would sit in kombu's unacked hash for the visibility timeout (an hour).
        wait_until(lambda: failures and settled(redis_client), timeout=10, message="given back and acked")
    assert seen == [sms(1)]  # the redelivery found the handled key
    assert "1 held event(s) given back" in caplog.text
    assert "already handled" in caplog.text


def test_an_event_popped_but_not_recorded_as_unacked_is_pushed_back(settings, redis_client, publish, monkeypatch):
    failures = _fail_once(monkeypatch, kombu_redis.QoS, "append")
    seen: list[dict[str, Any]] = []
    publish(sms(2))
    with running(seen.append, settings):  # type: ignore[arg-type]
        wait_until(lambda: failures and seen and settled(redis_client), timeout=10, message="pushed back and handled")
    assert seen == [sms(2)]
