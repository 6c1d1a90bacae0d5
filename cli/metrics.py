"""`lightsms-queue metrics --port 9808`: one Prometheus exporter for the domain metrics.

It reads what the workers already keep in Redis (counters, state indexes, the due set, pauses,
poller health) and the broker's queue depths at each scrape, so one exporter serves every host and
needs no multiprocess tricks. Celery's own metrics come from Flower's /metrics.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import click
import redis
from kombu import Connection
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core import keys
from core.contract import INBOUND_QUEUE_NAME, MAINTENANCE_QUEUE, POLL_QUEUE, QUEUES, STATUS_QUEUE_NAME, dead_queue_name
from core.events import broker_connection
from core.pause import AccountCircuit
from core.redis_client import store_client
from core.settings import CoreSettings
from core.states import State
from core.stats import Stats

from .context import core_settings, friendly_errors

# Counters with a metric of their own; any other counter is lightsms_counter_total{name=...}.
OUTCOMES = ("sent", "unknown", "suppressed", "dead", "deferred")
DELIVERY = ("delivered", "undelivered", "expired", "partly_delivered")
LIMITER = ("limiter_waits", "limiter_wait_ms", "limiter_full")  # worker/limiter.py counts them
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
        yield from self._counters()
        yield self._states()
        yield self._queue_depths()
        yield from self._due_lag()
        yield from self._pauses()
        yield self._poll_ages()

    def _counters(self) -> Iterator[Metric]:
        counters = Stats(self.redis).read()
        for name in OUTCOMES:
            yield CounterMetricFamily(f"lightsms_{name}", f"messages that became {name.upper()}",
                                      value=float(counters.pop(name, 0)))  # fmt: skip
        failed = CounterMetricFamily("lightsms_failed", "messages that FAILED, by LightSMS code", labels=["code"])
        delivery = CounterMetricFamily("lightsms_delivery", "delivery statuses learnt", labels=["status"])
        other = CounterMetricFamily("lightsms_counter", "other counters the workers keep", labels=["name"])
        for name in DELIVERY:
            delivery.add_metric([name], float(counters.pop(name, 0)))
        limiter = [(name, float(counters.pop(name, 0))) for name in LIMITER]
        cost = Decimal(counters.pop("cost", "0"))
        parts = float(counters.pop("parts", 0))
        for name, value in counters.items():
            if name.startswith("failed:"):
                failed.add_metric([name.removeprefix("failed:")], float(value))
            else:
                other.add_metric([name], float(value))
        yield failed
        yield delivery
        yield other
        yield CounterMetricFamily("lightsms_cost", "money LightSMS charged, in the account currency", value=float(cost))
        yield CounterMetricFamily("lightsms_parts", "SMS parts sent", value=parts)
        waits, wait_ms, full = (value for _, value in limiter)
        yield CounterMetricFamily("lightsms_limiter_waits", "requests that waited for a rate-limit slot", value=waits)
        yield CounterMetricFamily("lightsms_limiter_wait_seconds", "time spent waiting for rate-limit slots",
                                  value=wait_ms / 1000)  # fmt: skip
        yield CounterMetricFamily("lightsms_limiter_full", "batches deferred: no rate-limit slot within the wait",
                                  value=full)  # fmt: skip

    def _states(self) -> Metric:
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
        return gauge

    def _queue_depths(self) -> Metric:
        gauge = GaugeMetricFamily("lightsms_queue_depth", "messages waiting in a broker queue", labels=["queue"])
        channel = self.connection.default_channel
        for name in broker_queues():
            try:
                depth = int(channel.queue_declare(name, passive=True)[1])
            except self.connection.channel_errors:
                depth = 0  # not declared yet: nothing was ever put there
                channel = self.connection.default_channel
            gauge.add_metric([name], float(depth))
        return gauge

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
            login = (raw.decode() if isinstance(raw, bytes) else str(raw)).removeprefix(prefix)
            pause = AccountCircuit(self.redis, login=login).current()
            if pause is not None:
                paused.add_metric([login, "" if pause.code is None else str(pause.code)], 1.0)
        yield paused

    def _poll_ages(self) -> Metric:
        gauge = GaugeMetricFamily("lightsms_poll_age_seconds", "seconds since the poller's last successful poll",
                                  labels=["poller"])  # fmt: skip
        health = self.redis.hgetall(keys.POLLER_HEALTH)
        now = time.time()
        for poller in POLLERS:
            at = health.get(f"{poller}_ok_at".encode()) or health.get(f"{poller}_ok_at")  # type: ignore[call-overload]
            gauge.add_metric([poller], now - float(at) if at else float("inf"))
        return gauge


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
    start_http_server(port, addr=address, registry=registry)
    click.echo(f"serving metrics on http://{address}:{port}/metrics")
    while True:
        time.sleep(3600)
