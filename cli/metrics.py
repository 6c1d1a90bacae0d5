"""`lightsms-queue metrics --port 9808`: one Prometheus exporter for the domain metrics.

It reads what the workers already keep in Redis (counters, state indexes, the due set, pauses,
poller health) and the broker's queue depths at each scrape, so one exporter serves every host and
needs no multiprocess tricks. Celery's own metrics come from Flower's /metrics.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator

import click
import kombu.exceptions
import redis
from kombu import Connection
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core import keys
from core.contract import INBOUND_QUEUE_NAME, MAINTENANCE_QUEUE, POLL_QUEUE, QUEUES, STATUS_QUEUE_NAME, dead_queue_name
from core.events import broker_connection
from core.pause import AccountCircuit
from core.redis_client import reply_text, store_client
from core.settings import CoreSettings
from core.states import State
from core.stats import Stats

from .context import core_settings, fail, friendly_errors

log = logging.getLogger("lightsms_queue.metrics")
KOMBU_ERRORS = (kombu.exceptions.KombuError, OSError)

# Counters with a metric of their own; any other counter is lightsms_counter_total{name=...}.
OUTCOMES = ("sent", "unknown", "suppressed", "dead", "deferred")
DELIVERY = ("delivered", "undelivered", "expired", "partly_delivered")
LIMITER = ("limiter_waits", "limiter_wait_ms", "limiter_full", "limiter_late")  # worker/limiter.py counts them
# The state label of each index; two states share the due index and two the status index.
INDEXES = (
    ("SCHEDULED|DEFERRED", keys.DUE_INDEX),
    (State.SENDING.value, keys.SENDING_INDEX),
    ("SENT|PARTLY_DELIVERED", keys.STATUS_DUE_INDEX),
    (State.UNKNOWN.value, keys.UNKNOWN_INDEX),
    (State.DEAD.value, keys.DEAD_INDEX),
)
EVENT_QUEUES = (INBOUND_QUEUE_NAME, STATUS_QUEUE_NAME)
POLLERS = ("incoming", "status")


def broker_queues() -> list[str]:
    names = [q.name for q in (*QUEUES, MAINTENANCE_QUEUE, POLL_QUEUE)]
    return names + [*EVENT_QUEUES, *(dead_queue_name(q) for q in EVENT_QUEUES)]


class DomainCollector(Collector):
    def __init__(self, client: redis.Redis, connection: Connection) -> None:
        self.redis = client
        self.connection = connection

    def collect(self) -> Iterator[Metric]:
        # A scrape never fails: a section Redis or the broker cannot answer (or that finds a value
        # written wrong) is left out, counted in lightsms_scrape_errors, and logged.
        errors = CounterMetricFamily("lightsms_scrape_errors", "sections this scrape had to leave out",
                                     labels=["section"])  # fmt: skip
        for name, section in (("counters", self._counters), ("states", self._states),
                              ("queues", self._queue_depths), ("due_lag", self._due_lag),
                              ("pauses", self._pauses), ("polls", self._poll_ages)):  # fmt: skip
            try:
                found = list(section())
            except (redis.RedisError, *KOMBU_ERRORS, ValueError, TypeError, ArithmeticError) as exc:
                log.warning("metrics: left out %s (%s)", name, type(exc).__name__)
                errors.add_metric([name], 1.0)
                continue
            yield from found
        yield errors

    def _counters(self) -> Iterator[Metric]:
        # A counter that is not a number (written by hand) is left out, not a reason to fail the scrape.
        counters = {name: number for name, raw in Stats(self.redis).read().items()
                    if (number := _number(raw)) is not None}  # fmt: skip
        for name in OUTCOMES:
            yield CounterMetricFamily(f"lightsms_{name}", f"messages that became {name.upper()}",
                                      value=counters.pop(name, 0.0))  # fmt: skip
        failed = CounterMetricFamily("lightsms_failed", "messages that FAILED, by LightSMS code", labels=["code"])
        delivery = CounterMetricFamily("lightsms_delivery", "delivery statuses learnt", labels=["status"])
        other = CounterMetricFamily("lightsms_counter", "other counters the workers keep", labels=["name"])
        for name in DELIVERY:
            delivery.add_metric([name], counters.pop(name, 0.0))
        waits, wait_ms, full, late = (counters.pop(name, 0.0) for name in LIMITER)
        cost, parts = counters.pop("cost", 0.0), counters.pop("parts", 0.0)
        for name, value in counters.items():
            if name.startswith("failed:"):
                failed.add_metric([name.removeprefix("failed:")], value)
            else:
                other.add_metric([name], value)
        yield failed
        yield delivery
        yield other
        yield CounterMetricFamily("lightsms_cost", "money LightSMS charged, in the account currency", value=cost)
        yield CounterMetricFamily("lightsms_parts", "SMS parts sent", value=parts)
        yield CounterMetricFamily("lightsms_limiter_waits", "requests that waited for a rate-limit slot", value=waits)
        yield CounterMetricFamily("lightsms_limiter_wait_seconds", "time spent waiting for rate-limit slots",
                                  value=wait_ms / 1000)  # fmt: skip
        yield CounterMetricFamily("lightsms_limiter_full", "batches deferred: no rate-limit slot within the wait",
                                  value=full)  # fmt: skip
        yield CounterMetricFamily("lightsms_limiter_late", "rate-limit slots given up: the thread woke too late for it",
                                  value=late)  # fmt: skip

    def _states(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("lightsms_messages", "stored messages by state (those not yet final)",
                                  labels=["state", "priority"])  # fmt: skip
        pipe = self.redis.pipeline(transaction=False)
        for priority in keys.PRIORITIES:
            pipe.zcard(keys.queued_index(priority))
        for _, index in INDEXES:
            pipe.zcard(index)
        sizes = pipe.execute()
        for priority, size in zip(keys.PRIORITIES, sizes, strict=False):
            gauge.add_metric([State.QUEUED.value, priority], float(size))
        for (label, _), size in zip(INDEXES, sizes[len(keys.PRIORITIES) :], strict=True):
            gauge.add_metric([label, ""], float(size))
        yield gauge

    def _queue_depths(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("lightsms_queue_depth", "messages waiting in a broker queue", labels=["queue"])
        channel = self.connection.default_channel
        for name in broker_queues():
            try:
                depth = int(channel.queue_declare(name, passive=True)[1])
            except self.connection.channel_errors:
                depth = 0  # not declared yet: nothing was ever put there
                channel = self.connection.default_channel
            gauge.add_metric([name], float(depth))
        yield gauge

    def _due_lag(self) -> Iterator[Metric]:
        now = time.time()
        oldest = self.redis.zrangebyscore(keys.DUE_INDEX, "-inf", now, start=0, num=1, withscores=True)
        lag = now - float(oldest[0][1]) if oldest else 0.0
        yield GaugeMetricFamily("lightsms_due_lag_seconds", "age of the oldest due SCHEDULED/DEFERRED message",
                                value=lag)  # fmt: skip

    def _pauses(self) -> Iterator[Metric]:
        paused = GaugeMetricFamily("lightsms_account_paused", "1 while sending is paused for the account",
                                   labels=["login", "code"])  # fmt: skip
        prefix = keys.pause("")
        for raw in self.redis.scan_iter(match=keys.pause("*"), count=100):
            login = reply_text(raw).removeprefix(prefix)
            pause = AccountCircuit(self.redis, login=login).current()
            if pause is not None:
                paused.add_metric([login, "" if pause.code is None else str(pause.code)], 1.0)
        yield paused

    def _poll_ages(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily("lightsms_poll_age_seconds", "seconds since the poller's last successful poll",
                                  labels=["poller"])  # fmt: skip
        health = self.redis.hgetall(keys.POLLER_HEALTH)
        now = time.time()
        for poller in POLLERS:
            at = health.get(f"{poller}_ok_at".encode()) or health.get(f"{poller}_ok_at")  # type: ignore[call-overload]
            when = _number(reply_text(at)) if at else None
            gauge.add_metric([poller], now - when if when is not None else float("inf"))
        yield gauge


def _number(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def registry_for(settings: CoreSettings) -> CollectorRegistry:
    registry = CollectorRegistry()
    client = store_client(settings, socket_timeout=5, socket_connect_timeout=5)
    registry.register(DomainCollector(client, broker_connection(settings)))
    return registry


@click.command()
@click.option("--port", default=9808, show_default=True, help="port to serve /metrics on")
@click.option("--address", default="127.0.0.1", show_default=True, help="address to listen on (0.0.0.0: all)")
@friendly_errors
def metrics(port: int, address: str) -> None:
    """Serve the domain metrics for Prometheus (reads Redis and the broker at each scrape)."""
    registry = registry_for(core_settings())
    try:
        start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        fail(f"cannot listen on {address}:{port}: {exc.strerror}", code=2)
    click.echo(f"serving metrics on http://{address}:{port}/metrics")
    while True:
        time.sleep(3600)
