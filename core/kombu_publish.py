"""Publishing on kombu's Redis channel without a new Redis client per message.

kombu's Redis channel builds a new redis.Redis for every publish (`conn_or_acquire` without a
client: `_create_client()`), which cost about as much as the LPUSH itself. The client it builds
wraps the channel's own connection pool, so keeping one per channel changes nothing else: the same
pool, the same reconnects (and Sentinel failovers). A channel kombu builds again after an error gets
its own on its first publish. Other transports (AMQP) are left as they are.

Both publishers use it: the producers' send tasks (producers/celery_client.py, which also records a
publish for the store's script to make, `recording`) and the pollers' events (core/events.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["NotRecorded", "recording", "reuse_publish_client"]


class NotRecorded(Exception):
    """kombu asked the recording client for more than an LPUSH."""


class _Recorder:
    """Stands in for kombu's Redis client while a publish is recorded: keeps what it would LPUSH."""

    def __init__(self, writes: list[tuple[str, str]]) -> None:
        self._writes = writes

    def lpush(self, key: str, value: str) -> int:
        self._writes.append((key, value))
        return len(self._writes)

    def __getattr__(self, name: str) -> Any:
        raise NotRecorded(name)


def reuse_publish_client(channel: Any) -> None:
    """Publish through one Redis client per kombu channel instead of a new one per message."""
    if getattr(channel, "_lightsms_publish_client", None) is not None or not hasattr(channel, "_create_client"):
        return
    if not callable(getattr(channel, "conn_or_acquire", None)):
        return
    client = channel._create_client()
    original = channel.conn_or_acquire

    @contextmanager
    def conn_or_acquire(client_: Any = None) -> Any:
        if client_ is not None:  # a caller's own client (kombu's polling): as before
            with original(client_) as given:
                yield given
        elif channel._lightsms_recording is not None:  # within `recording`
            yield _Recorder(channel._lightsms_recording)
        else:
            yield client

    channel._lightsms_publish_client = client
    channel._lightsms_recording = None
    channel.conn_or_acquire = conn_or_acquire


@contextmanager
def recording(channel: Any) -> Iterator[list[tuple[str, str]]]:
    """Within it, what the channel's publishes would LPUSH is recorded as (list, payload) pairs
    instead of made; a publish that needs more than an LPUSH raises NotRecorded."""
    reuse_publish_client(channel)
    writes: list[tuple[str, str]] = []
    channel._lightsms_recording = writes
    try:
        yield writes
    finally:
        channel._lightsms_recording = None
