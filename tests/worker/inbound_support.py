"""What the inbound poller tests share: an in-process IncomingPoller on the session's Redis and
simulator, and a plain kombu reader of `sms.inbound` (what a service without this package does)."""

from __future__ import annotations

import time
from datetime import datetime
from queue import Empty
from typing import Any
from zoneinfo import ZoneInfo

import redis
from kombu import Connection

from core.client import build_client
from core.events import EventPublisher, broker_connection
from core.settings import Settings
from worker.inbound import IncomingPoller

VILNIUS = ZoneInfo("Europe/Vilnius")


def poller_settings(redis_url: str, base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "lightsms_base_url": base_url,
        "lightsms_login": "demo",
        "lightsms_api_key": "demo-key",
        "lightsms_connect_timeout": 1,
        "lightsms_read_timeout": 2,
        **overrides,
    }
    return Settings(**values)


def make_poller(settings: Settings, *, response_format: str = "json", **fields: Any) -> IncomingPoller:
    client = build_client(settings)
    client.response_format = response_format
    store = redis.Redis.from_url(settings.store_url)
    publisher = fields.pop("publisher", None) or EventPublisher(broker_connection(settings))
    return IncomingPoller(settings=settings, redis=store, client=client, publisher=publisher, **fields)


def local(epoch: float) -> str:
    """An instant as the simulator's (LightSMS's) naive account-local date."""
    return datetime.fromtimestamp(epoch, VILNIUS).strftime("%Y-%m-%d %H:%M:%S")


def drain(broker_url: str, queue: str = "sms.inbound") -> list[dict[str, Any]]:
    """Every event waiting on `queue` now, read and acked with plain kombu, oldest first. (Not
    block=True: on Redis that is a BRPOP with a whole-second timeout.)"""
    events: list[dict[str, Any]] = []
    with Connection(broker_url) as connection:
        simple = connection.SimpleQueue(queue)
        try:
            while True:
                try:
                    message = simple.get(block=False)
                except Empty:
                    return events
                events.append(message.payload)
                message.ack()
        finally:
            simple.close()


def wait_for_events(broker_url: str, count: int, *, timeout: float, settle: float = 0.5) -> list[dict[str, Any]]:
    """Read events until `count` have come (or the deadline), then for `settle` seconds more, so
    that an event published twice shows up here instead of after the test."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(events) < count and time.monotonic() < deadline:
        events.extend(drain(broker_url))
        time.sleep(0.05)  # a poll interval between reads, not a wait for a result
    quiet_until = time.monotonic() + settle
    while time.monotonic() < quiet_until:
        events.extend(drain(broker_url))
        time.sleep(0.05)
    return events
