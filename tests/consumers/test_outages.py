"""What a consumer waits out (consumers.handling.is_outage) and what it lets crash; and a Redis busy
with another client's long script, ridden out by a real consumer."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis
from kombu.exceptions import OperationalError

from consumers.handling import is_outage
from devtools.polling import wait_until
from tests.consumers.conftest import running, settled, sms


@pytest.mark.parametrize("error", [
    redis.ConnectionError("Connection closed by server."), redis.TimeoutError("Timeout reading"),
    redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
    redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
    redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
    redis.exceptions.MasterDownError("Link with MASTER is down"),
    redis.ResponseError("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."),
    redis.ResponseError("MISCONF Redis is configured to save RDB snapshots, but it's unable to persist to disk."),
    redis.ResponseError("NOREPLICAS Not enough good replicas to write."),
    OperationalError("Error 111 connecting to 127.0.0.1:6390. Connection refused."),
])  # fmt: skip
def test_what_an_outage_raises_is_waited_out(error):
    assert is_outage(error)


@pytest.mark.parametrize("error", [
    redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    redis.ResponseError("ERR unknown command 'BLMOVE'"), redis.exceptions.NoScriptError("NOSCRIPT"),
    KeyError("x"), OSError("disk"), ValueError("bug"),
])  # fmt: skip
def test_a_bug_or_a_wrong_setup_is_not_an_outage(error):
    assert not is_outage(error)


def test_a_redis_busy_with_another_clients_long_script_is_ridden_out(settings, redis_client, publish):
    previous = redis_client.config_get("busy-reply-threshold")["busy-reply-threshold"]
    redis_client.config_set("busy-reply-threshold", 100)  # ms: others are answered BUSY after this long
    probe = redis.Redis.from_url(settings.store_url)
    busy_seen: list[str] = []
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any]) -> None:
        seen.append(event)
        if len(seen) == 1:  # Redis turns busy just as the handler returns: recording and settling wait
            spin = threading.Thread(target=lambda: redis.Redis.from_url(settings.store_url).eval(SPIN, 0))
            spin.start()
            busy_seen.append(wait_until(lambda: _busy(probe), timeout=10, message="Redis busy"))

    try:
        publish(sms(1))
        with running(handler, settings):
            wait_until(lambda: seen and _busy(probe) is None and settled(redis_client), timeout=30,
                       message="the event settled after it")  # fmt: skip
    finally:
        redis_client.config_set("busy-reply-threshold", previous)
        probe.close()
    assert busy_seen and busy_seen[0].startswith("BUSY")
    assert seen == [sms(1)]  # waited out, not crashed (and not handled twice)


SPIN = "local n = 0 for i = 1, 150000000 do n = n + 1 end return n"  # a second or two of Lua


def _busy(client: redis.Redis) -> str | None:
    try:
        client.ping()
    except redis.ResponseError as exc:
        return str(exc)
    return None
